"""Evaluation sets as tracking protocols: who is tracked, what streams by, what is gold.

What this module is for: reading the labelled sets of `shared/data/` (README there) and
turning each into a `TrackingProtocol`: the stories the user would give, the stream of
articles in the order the protocol replays them, and the gold labels. The protocols are
fixed by issue 3, item 4; each is described where it is built:

- seed-followups (`seed_protocol`): stories built from the default corpus with
  `build_stories` (no hand rules), `dev.jsonl` replayed in file order; system story ids
  are mapped to gold ids by majority vote.
- Timeline17 (`t17_protocol`): six tracked stories, each built by `story_from_documents`
  from its first 10 articles by date (ties broken by id) and named by its gold id; every
  other article of all nine stories, in date order (ties by id), is the stream. Articles
  of the three untracked stories are gold-off-topic: they must stay unmatched.
  `t17_timelines` gives each story's gold timeline days for the alert-date metric.
  The one-folder variant (`t17_one_folder_protocol`, issue 13) hands the same 60 corpus
  documents to `build_stories` as one corpus; its stories are mapped by majority vote.
- hamborg-events (`hamborg_protocol`): one story per event from its first article (by
  published, ties by id), named by its gold id; the rest is the stream in date order.

The TREC-TS sentence-novelty protocol lives in `storyeval.trec`.

What it must not do: run the tracker, score anything, or write files. The harness may
know the protocols' story lists; the product code (every other module) must not.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from storyeval.metrics import GoldItem
from worker.decide.replay import parse_published, read_articles
from worker.models import Article, CorpusDocument, Story
from worker.stories.corpus import build_stories, story_from_documents
from worker.stories.folder import read_corpus

T17_TRACKED = (
    "bp-oil-spill",
    "egypt-protests",
    "h1n1",
    "haiti-earthquake",
    "libya-war",
    "michael-jackson-death",
)
T17_CORPUS_SIZE = 10

SEED_FILE = Path("seed-followups") / "dev.jsonl"
T17_ARTICLES = Path("t17") / "articles.jsonl.gz"
T17_TIMELINES = Path("t17") / "timelines.jsonl"
HAMBORG_FILE = Path("hamborg-events") / "articles.jsonl"


@dataclass(frozen=True, slots=True)
class TrackingProtocol:
    """One replay: stories to track, the stream in replay order, and its gold labels."""

    name: str
    stories: tuple[Story, ...]
    stream: tuple[Article, ...]
    gold: tuple[GoldItem, ...]  # one per stream article, same order
    gold_ids: bool  # True: stories are named by their gold id (identity mapping)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines file, gzip-compressed when its name ends in .gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            yield row


def _date_order(row: Mapping[str, Any]) -> tuple[str, str]:
    # Dates are ISO strings, some month-only; the parsed value orders them, and the id
    # breaks ties so the order never depends on file order.
    published = parse_published(row.get("published"))
    return (published.isoformat() if published else "", str(row["id"]))


def _document(row: Mapping[str, Any]) -> CorpusDocument:
    # The title heads the document like a headline does in the corpus files. Undated, as
    # the protocol has always handed it (issue 3): a date would make the stream's reports
    # of the corpus's last day known, and the numbers incomparable with earlier ones.
    title = str(row.get("title") or "").strip()
    text = str(row.get("text") or "")
    return CorpusDocument(name=str(row["id"]), text=f"{title}\n\n{text}" if title else text)


def seed_protocol(path: Path, corpus_dir: Path) -> TrackingProtocol:
    """seed-followups/dev.jsonl (`path`) in file order against the corpus's stories."""
    rows = list(read_jsonl(path))
    stories = build_stories(read_corpus(corpus_dir))
    gold = tuple(
        GoldItem(str(r["id"]), r.get("story"), str(r["label"]), tuple(r.get("developments") or ()))
        for r in rows
    )
    return TrackingProtocol(
        "seed", tuple(stories), tuple(read_articles(rows)), gold, gold_ids=False
    )


@dataclass(frozen=True, slots=True)
class _FirstArticles:
    """The first `corpus_size` rows of each tracked story, and every other row as the
    stream in date order with its gold labels."""

    corpus: dict[str, list[dict[str, Any]]]  # tracked story -> its corpus rows, by date
    stream: tuple[Article, ...]
    gold: tuple[GoldItem, ...]


def _first_articles(
    name: str, rows: Sequence[dict[str, Any]], tracked: Sequence[str], corpus_size: int
) -> _FirstArticles:
    """Split rows into each tracked story's first `corpus_size` rows and the stream."""
    ordered = sorted(rows, key=_date_order)
    by_story: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in ordered:
        by_story[str(row["story"])].append(row)
    missing = [s for s in tracked if s not in by_story]
    if missing:
        raise ValueError(f"{name}: no articles for tracked stories {missing}")
    corpus = {story_id: by_story[story_id][:corpus_size] for story_id in tracked}
    corpus_ids = {str(r["id"]) for first in corpus.values() for r in first}
    stream_rows = [r for r in ordered if str(r["id"]) not in corpus_ids]
    tracked_set = set(tracked)
    gold = tuple(
        GoldItem(
            str(r["id"]),
            str(r["story"]) if r["story"] in tracked_set else None,
            "on_topic" if r["story"] in tracked_set else "off_topic",
        )
        for r in stream_rows
    )
    return _FirstArticles(corpus, tuple(read_articles(stream_rows)), gold)


def _first_articles_protocol(
    name: str, rows: Sequence[dict[str, Any]], tracked: Sequence[str], corpus_size: int
) -> TrackingProtocol:
    """Track `tracked` stories from their first `corpus_size` rows; stream the rest."""
    split = _first_articles(name, rows, tracked, corpus_size)
    stories = tuple(
        story_from_documents(story_id, [_document(r) for r in first])
        for story_id, first in split.corpus.items()
    )
    return TrackingProtocol(name, stories, split.stream, split.gold, gold_ids=True)


def t17_protocol(data_dir: Path, corpus_size: int = T17_CORPUS_SIZE) -> TrackingProtocol:
    """Timeline17: six tracked stories from their first 10 articles, three untracked.

    `corpus_size` exists for tests on tiny fixtures; the protocol is 10.
    """
    rows = list(read_jsonl(data_dir / T17_ARTICLES))
    return _first_articles_protocol("t17", rows, T17_TRACKED, corpus_size)


def t17_one_folder_protocol(data_dir: Path, corpus_size: int = T17_CORPUS_SIZE) -> TrackingProtocol:
    """Timeline17 as a user gives it: the same 60 corpus documents in one folder.

    `build_stories` groups them itself (no story is named by a gold id); the stream and
    gold are `t17_protocol`'s, and system stories are mapped to gold by majority vote.
    """
    rows = list(read_jsonl(data_dir / T17_ARTICLES))
    split = _first_articles("t17-one-folder", rows, T17_TRACKED, corpus_size)
    documents = [_document(r) for first in split.corpus.values() for r in first]
    stories = tuple(build_stories(documents))
    return TrackingProtocol("t17-one-folder", stories, split.stream, split.gold, gold_ids=False)


def t17_timelines(data_dir: Path) -> dict[str, set[date]]:
    """Story -> the days its gold timelines (all sources together) name."""
    days: dict[str, set[date]] = defaultdict(set)
    for row in read_jsonl(data_dir / T17_TIMELINES):
        days[str(row["story"])].add(date.fromisoformat(str(row["date"])[:10]))
    return dict(days)


def hamborg_protocol(data_dir: Path) -> TrackingProtocol:
    """hamborg-events: each event tracked from its first article; the rest streams by."""
    rows = list(read_jsonl(data_dir / HAMBORG_FILE))
    events = sorted({str(r["story"]) for r in rows})
    return _first_articles_protocol("hamborg", rows, events, 1)


def subsample(protocol: TrackingProtocol, stride: int) -> TrackingProtocol:
    """Every `stride`-th stream article (deterministic), for cheap threshold sweeps."""
    if stride <= 1:
        return protocol
    return TrackingProtocol(
        protocol.name,
        protocol.stories,
        protocol.stream[::stride],
        protocol.gold[::stride],
        protocol.gold_ids,
    )
