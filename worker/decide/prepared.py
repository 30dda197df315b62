"""Prepared views: the part of a decision that reads the article alone (its term vector,
`worker.decide.match.ArticleView`), computed by the process that stores the article and
handed to the one that decides it (worker.pipeline.deciding), as bytes with a fingerprint
of what it was computed from. Storing processes run side by side; the deciding one is the
service's one serial stage, and for an article that matches no story the term vector was
about a third of its decision's cost."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version

from worker.decide.match import ArticleView, article_view
from worker.decide.tracker import TrackerConfig
from worker.text.terms import bounded_text

# The version of how a view is computed and written (`article_view`, its tokens and terms,
# this module's JSON): part of the fingerprint, so a decider running other code than the
# storing process that prepared a view computes its own. Raise it with any such change.
VIEW_VERSION = 1
# The word frequencies behind term weights (worker.text.terms.term_weight) come with the
# `wordfreq` package: another version weighs terms differently.
_WEIGHTS = f"wordfreq {version('wordfreq')}"


def prepare_view(title: str | None, text: str, config: TrackerConfig) -> ArticleView:
    """The term vector a tracker with `config` computes for this article (`Tracker.prime`
    takes it): the part of a decision that reads the article alone, so a process storing
    articles can do it while the deciding one decides others."""
    return article_view(title, bounded_text(text, config.max_article_chars), config.match)


def view_fingerprint(title: str | None, text: str, config: TrackerConfig) -> bytes:
    """What a prepared view was computed from: the article's title and text, and the
    knobs, code and data the view depends on. A decider for which any differs computes
    its own."""
    digest = hashlib.blake2b(digest_size=16)
    knobs = f"{VIEW_VERSION} {_WEIGHTS} {config.match!r} {config.max_article_chars}"
    for part in (title or "", text, knobs):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.digest()


def encode_view(view: ArticleView) -> bytes:
    """The view as JSON bytes, for a process that decides what another one stored
    (worker.store.views): the vector in its own order and every float exactly (JSON
    writes the shortest repr that reads back to the same double), so a decision made on
    the decoded view is the one made on the view itself."""
    data = {
        "vector": list(view.vector.items()),
        "norm": view.norm,
        "entities": sorted(view.entities),
        "dominant": [list(item) for item in view.dominant_counts],
        "plain": view.plain,
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def decode_view(data: bytes) -> ArticleView:
    """What `encode_view` wrote. Raises ValueError (or KeyError, TypeError) on bytes it
    did not write."""
    raw = json.loads(data)
    counts = tuple((str(name), int(count)) for name, count in raw["dominant"])
    return ArticleView(
        vector={str(term): float(weight) for term, weight in raw["vector"]},
        norm=float(raw["norm"]),
        entities=frozenset(str(entity) for entity in raw["entities"]),
        dominant=frozenset(name for name, _ in counts),
        dominant_counts=counts,
        plain=str(raw["plain"]),
    )
