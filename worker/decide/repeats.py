"""Which recent development of a story does an article repeat, if any?

"One development, one alert": when a later article from another outlet reports a
development that was already alerted, it is recorded on that development ("also reported
by N sources") instead of alerting again.

An article repeats a development when it carries the development's *specifics*: the
terms of the development's article that the story did not know before it (names,
numbers, rare words), weighted by rarity. The whole article, not only the 1-3 sentences
the alert quotes: another outlet may lead with a different fact of the same event.
Terms the story already knew ("Azerbaijan", "crash", "Aktau") say nothing about which
development an article reports, so they do not count; where in the article the
specifics stand does not matter, since a rewrite often splits one wire sentence in two.

It must not: decide novelty (novelty.py does), or read or write storage. The tracker
remembers each story's recent developments and asks `repeated_development` about every
matched article, so the live service and `storywatch replay` decide repeats alike.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.text.terms import content_terms, term_weight

# Measured on hand-written rewrites of one development (they carry 9-15 specifics, 26-50%
# of their weight) against real articles on the same story reporting other things within
# a week (at most 4 specifics, 16%). Months later a report of another event may recall
# the development at length (seed dev: 7 specifics, 54%), hence the window.
REPEAT_SHARE = 0.2  # share of a development's weighted specifics the article must carry
MIN_SPECIFIC_TERMS = 5  # and at least this many of them: a shared name is not a report
MIN_TERM_WEIGHT = 2.0  # lighter terms ("said", "report") are not specifics
RECENT = timedelta(days=7)  # how far apart a development and a later report of it may be


@dataclass(frozen=True, slots=True)
class RecentDevelopment:
    """An alerted development as the story remembers it for spotting later reports."""

    key: str  # the development's article id
    specifics: frozenset[str]  # `new_terms` of its article when it was alerted
    published: datetime | None = None
    surge: bool = False  # alerted for a surge of reports (worker.decide.surge), not for new facts


def new_terms(texts: Iterable[str], known: Collection[str]) -> frozenset[str]:
    """A development's specifics: its article's informative terms the story did not know."""
    return frozenset(
        term
        for text in texts
        for term in content_terms(text)
        if term not in known and term_weight(term) >= MIN_TERM_WEIGHT
    )


def within(a: datetime | None, b: datetime | None, window: timedelta) -> bool:
    """Published within `window` of each other; an unknown date cannot rule it out."""
    return a is None or b is None or abs(a - b) <= window


def repeated_development(
    article_text: str,
    developments: Sequence[RecentDevelopment],
    *,
    published: datetime | None = None,
    window: timedelta = RECENT,
) -> str | None:
    """The key of the recent development whose specifics the article carries best, or None.

    Only developments published within `window` of the article count: months later, the
    same names return in reports of other events (the case closed, the trial opened).
    """
    article = set(content_terms(article_text))
    best: tuple[float, str] | None = None
    for development in developments:
        if not development.specifics or not within(published, development.published, window):
            continue
        shared = development.specifics & article
        if len(shared) < MIN_SPECIFIC_TERMS:
            continue
        share = sum(map(term_weight, shared)) / sum(map(term_weight, development.specifics))
        if share >= REPEAT_SHARE and (best is None or share > best[0]):
            best = (share, development.key)
    return best[1] if best else None
