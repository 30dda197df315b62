"""Pure helpers behind `storywatch replay` (DESIGN §4): rows in, decisions out, in order.

What this module is for: turning input rows into `Article`s (tolerating nulls and
month-only dates) and running them through a `Tracker` exactly as the live service does:
decide, then learn. The CLI owns files and the temporary state; this module owns none.

What it must not do: read or write files, or decide anything itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from worker.decide.tracker import Tracker
from worker.models import Article
from worker.utc import parse_iso

_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?$")


def parse_published(value: object) -> datetime | None:
    """ISO timestamps, dates, "2025-03" or "2025"; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    partial = _PARTIAL_DATE.match(text)
    if partial:
        year, month, day = (int(g) if g else 1 for g in partial.groups())
        try:
            return datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            return None
    return parse_iso(text)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def read_articles(rows: Iterable[Mapping[str, Any]]) -> Iterator[Article]:
    """Articles from replay input rows; unknown fields are ignored, nulls allowed."""
    for number, row in enumerate(rows):
        article_id = _text(row.get("id")) or f"row-{number}"
        yield Article(
            id=article_id,
            title=_text(row.get("title")),
            text=str(row.get("text") or ""),
            url=_text(row.get("url")),
            source=_text(row.get("source")),
            published=parse_published(row.get("published")),
        )


def replay(tracker: Tracker, articles: Iterable[Article]) -> Iterator[dict[str, Any]]:
    """Decide then learn each article in order; one output row per article.

    The stream is in the order it was seen: an undated article was seen at the latest
    date seen before it (`Article.seen`), as the service dates it by the poll that saw it.
    """
    clock: datetime | None = None
    for given in _prepared(tracker, articles):
        article = given if given.when or clock is None else replace(given, seen=clock)
        if given.published is not None and (clock is None or given.published > clock):
            clock = given.published
        decision = tracker.decide(article)
        tracker.learn(article, decision)
        novelty = decision.novelty
        yield {
            "id": article.id,
            "story": decision.story_id,
            "score": decision.match.score if decision.match else 0.0,
            "new_development": decision.new_development,
            "new_facts": list(novelty.new_facts) if novelty and novelty.is_new else [],
        }


# With embeddings on, leads are embedded this many articles ahead, in one batch.
_PREPARE_AHEAD = 256


def _prepared(tracker: Tracker, articles: Iterable[Article]) -> Iterator[Article]:
    iterator = iter(articles)
    while chunk := list(islice(iterator, _PREPARE_AHEAD)):
        tracker.prepare(chunk)
        yield from chunk
