"""One rule for times: every time storywatch compares or stores is aware and in UTC.

Feeds, pages, replay files, TOML and SQLite all hand over times with or without a zone; a
naive one is read as UTC (what feeds and SQLite mean by it), an aware one is converted.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """The same instant, aware and in UTC; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_iso(text: str) -> datetime | None:
    """ISO 8601 (a trailing "Z" included) as aware UTC, a time without a zone taken as
    UTC; None when the text is no such time (or one out of range once converted)."""
    try:
        return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):  # OverflowError: "0001-01-01T00:00:00+05:00"
        return None


def utcnow() -> datetime:
    return datetime.now(UTC)
