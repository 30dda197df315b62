"""JSON Feed (https://www.jsonfeed.org/version/1.1/, and 1.0) to feed items.

Pure, like `worker.feeds.parse`, which calls it when the body is a JSON object: the same
item keys (id, else url, else a hash), plain-text summaries and UTC dates as RSS and Atom
items get, so a site that moves between formats keeps its items' identity.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from worker.errors import FeedParseError
from worker.models import FeedItem
from worker.text.html import html_to_text
from worker.utc import parse_iso

VERSION_PREFIX = "https://jsonfeed.org/version/"
MAX_TEXT = 100_000  # characters of one item's content kept as its summary


def looks_like_json(body: bytes) -> bool:
    """A JSON object, whatever the Content-Type says (servers label feeds loosely, and
    no RSS, Atom or RDF document starts with "{")."""
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def read_json_feed(
    body: bytes,
    *,
    url: str,
    key: Callable[..., str],
    absolute: Callable[[str | None, str], str | None],
) -> tuple[str | None, list[FeedItem], list[str]]:
    """(feed title, items in feed order, warnings). `key` and `absolute` are the RSS
    parser's item key and link resolution, so both formats key items alike."""
    try:
        document = json.loads(body.decode("utf-8-sig", errors="replace"))
    except ValueError as exc:
        raise FeedParseError(f"{url} is not a readable feed: invalid JSON ({exc})") from exc
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        VERSION_PREFIX
    ):
        raise FeedParseError(f"{url} is not a readable feed: JSON without a JSON Feed version")
    raw_items = document.get("items")
    if not isinstance(raw_items, list):
        raise FeedParseError(f"{url} is not a readable feed: JSON Feed without an items list")
    title = html_to_text(_text(document.get("title")))
    items: list[FeedItem] = []
    warnings: list[str] = []
    for position, entry in enumerate(raw_items):
        if not isinstance(entry, Mapping):
            warnings.append(f"item {position + 1} skipped: not an object")
            continue
        items.append(_item(entry, url, key, absolute))
    return title, items, warnings


def _item(
    entry: Mapping[str, Any],
    feed_url: str,
    key: Callable[..., str],
    absolute: Callable[[str | None, str], str | None],
) -> FeedItem:
    title = html_to_text(_text(entry.get("title")))
    summary = (
        html_to_text(_text(entry.get("summary")))
        or _plain(_text(entry.get("content_text")))
        or html_to_text(_text(entry.get("content_html"))[:MAX_TEXT] or None)
    )
    link = absolute(_text(entry.get("url")) or _text(entry.get("external_url")) or None, feed_url)
    ident = entry.get("id")
    guid = str(ident) if isinstance(ident, str | int) and str(ident).strip() else None
    return FeedItem(
        key=key(guid=guid, link=link, title=title, summary=summary),
        url=link,
        title=title,
        summary=summary,
        published=_date(entry.get("date_published")) or _date(entry.get("date_modified")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _plain(text: str) -> str | None:
    words = " ".join(text[:MAX_TEXT].split())
    return words or None


def _date(value: Any) -> datetime | None:
    """RFC 3339, as JSON Feed requires; an offset is converted, none is taken as UTC."""
    return parse_iso(value) if isinstance(value, str) and value.strip() else None
