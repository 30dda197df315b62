"""One rule for times: every time storywatch compares or stores is aware and in UTC.

Feeds, pages, replay files, TOML and SQLite all hand over times with or without a zone; a
naive one is read as UTC (what feeds and SQLite mean by it), an aware one is converted.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """The same instant, aware and in UTC; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
