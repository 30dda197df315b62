"""Which recent development of a story does an article repeat, if any?

"One development, one alert": when a later article from another outlet reports a
development that was already alerted, it is recorded on that development ("also reported
by N sources") instead of alerting again.

An article repeats a development when it carries the development's *specifics*: the
terms of the development's article that the story did not know from its corpus (names,
numbers, rare words), weighted by rarity. The whole article, not only the 1-3 sentences
the alert quotes: another outlet may lead with a different fact of the same event.
Terms the story already knew ("Azerbaijan", "crash", "Aktau") say nothing about which
development an article reports, so they do not count; where in the article the
specifics stand does not matter, since a rewrite often splits one wire sentence in two.

It must not: decide novelty (novelty.py does), or read or write storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from worker.text import content_terms, term_weight

# Measured on hand-written rewrites of one development (they carry 9-15 specifics, 26-50%
# of their weight) against real articles on the same story reporting other things (at
# most 4 specifics, 9%): the bar sits well clear of both.
REPEAT_SHARE = 0.2  # share of a development's weighted specifics the article must carry
MIN_SPECIFIC_TERMS = 5  # and at least this many of them: a shared name is not a report
MIN_TERM_WEIGHT = 2.0  # lighter terms ("said", "report") are not specifics


@dataclass(frozen=True, slots=True)
class RecentDevelopment:
    id: int
    texts: tuple[str, ...]  # the development article's title and text


def vocabulary(texts: Iterable[str]) -> frozenset[str]:
    """The terms a story knows from these texts (e.g. its corpus facts)."""
    return frozenset(term for text in texts for term in content_terms(text))


def specifics(development: RecentDevelopment, known: frozenset[str]) -> frozenset[str]:
    return frozenset(
        term
        for text in development.texts
        for term in content_terms(text)
        if term not in known and term_weight(term) >= MIN_TERM_WEIGHT
    )


def repeated_development(
    article_text: str, developments: Sequence[RecentDevelopment], known: frozenset[str]
) -> int | None:
    """The id of the development whose specifics the article carries best, or None."""
    article = set(content_terms(article_text))
    best: tuple[float, int] | None = None
    for development in developments:
        terms = specifics(development, known)
        shared = terms & article
        if len(shared) < MIN_SPECIFIC_TERMS:
            continue
        share = sum(map(term_weight, shared)) / sum(map(term_weight, terms))
        if share >= REPEAT_SHARE and (best is None or share > best[0]):
            best = (share, development.id)
    return best[1] if best else None
