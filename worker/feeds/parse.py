"""Feed bytes -> `ParsedFeed`: items with stable keys, plain-text summaries and UTC dates.

Pure: the caller fetched the bytes (net.py) and passes the response headers, so feedparser
can honour the charset of Content-Type (RFC 7303 §3.2: for XML media types the HTTP
charset wins over the XML declaration). This module must not fetch anything, must not
hand feedparser a string it could mistake for a URL or a file name (feedparser `api.py`
`_open_resource` opens both), and must not import httpx or the database.

Item keys are what makes polling idempotent (STYLE habit 3): the GUID, else the link,
else a hash of title and summary, prefixed so the three kinds never collide. A GUID that a
feed reuses for another link (`reused_key`) keys a new item: the link is what is fetched.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from worker.articles.urls import canonicalize_url
from worker.errors import FeedParseError
from worker.feeds.jsonfeed import looks_like_json, read_json_feed
from worker.models import FeedItem, ParsedFeed
from worker.text.encoding import decode_utf8
from worker.text.html import html_to_text

MAX_KEY_LENGTH = 200  # longer keys are hashed: they are indexed columns in the store
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.IGNORECASE)


# sy:updatePeriod values (RSS 1.0 Syndication module) in seconds.
_SY_PERIODS = {
    "hourly": 3_600,
    "daily": 86_400,
    "weekly": 604_800,
    "monthly": 2_592_000,
    "yearly": 31_536_000,
}


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse RSS, Atom, RDF or JSON Feed bytes fetched from `url` with their HTTP
    response headers.

    Raises FeedParseError when the document is not a feed. A damaged feed that feedparser
    can still read returns its items plus the problem in `warnings`.
    """
    # No Content-Location on purpose: with a base URI, feedparser's loose parser (used for
    # broken XML) "resolves" GUIDs like "item-1" into URLs, so a key would change whenever
    # a feed flips between well-formed and broken. We resolve item links ourselves.
    response_headers = {
        name.lower(): value
        for name, value in (headers or {}).items()
        if name.lower() != "content-location"
    }
    if looks_like_json(body):
        title, entries_read, warnings = read_json_feed(
            body, url=url, key=item_key, absolute=_absolute_link
        )
        return _parsed(title, entries_read, None, warnings)
    body, repaired = repair_utf8(body, response_headers.get("content-type"))
    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers=response_headers,
        sanitize_html=False,  # we only keep plain text; DESIGN §7: ~30% faster
        resolve_relative_uris=False,  # links in HTML content are dropped with the tags
    )
    warnings = _warnings(parsed)
    if repaired:
        warnings.append(f"{repaired} invalid UTF-8 byte(s) replaced")
    feed_title = html_to_text(parsed.feed.get("title"))
    entries = parsed.get("entries") or []
    if not entries and (not parsed.get("version") or (parsed.get("bozo") and not feed_title)):
        problem = warnings[0] if warnings else "no RSS, Atom or RDF root element"
        raise FeedParseError(f"{url} is not a readable feed: {problem}")

    read: list[FeedItem] = []
    for position, entry in enumerate(entries):
        try:
            read.append(_item(entry, feed_url=url))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # One malformed item must not cost the feed its other items.
            warnings.append(f"item {position + 1} skipped: {type(exc).__name__}: {exc}")
    return _parsed(feed_title, read, _ttl_seconds(parsed.feed), warnings)


def _parsed(
    title: str | None, read: list[FeedItem], ttl: int | None, warnings: list[str]
) -> ParsedFeed:
    """The feed without true repeats (the same key and link again: the first occurrence
    wins, as feeds list newest first). Items that share a GUID but not a link are all
    kept under that key: which of them the GUID's own key belongs to depends on what
    the feed listed before, so the store decides it (`worker.store.feeds`)."""
    items: list[FeedItem] = []
    links: dict[str, list[str | None]] = {}
    duplicates = 0
    for item in read:
        seen = links.setdefault(item.key, [])
        if any(same_link(link, item.url) for link in seen):
            duplicates += 1
            continue
        seen.append(item.url)
        items.append(item)
    if duplicates:
        warnings.append(f"{duplicates} item(s) repeated an earlier item's key and were dropped")
    return ParsedFeed(title=title, items=tuple(items), ttl_seconds=ttl, warnings=tuple(warnings))


def item_key(*, guid: str | None, link: str | None, title: str | None, summary: str | None) -> str:
    """The stable key of one item: `guid:…`, else `link:…`, else `hash:<sha256>`.

    Links are canonicalized (tracking parameters dropped) because some feeds add per-poll
    tracking parameters; GUIDs are kept verbatim because they are opaque by spec (RSS 2.0
    <guid>, Atom <id>). Keys over MAX_KEY_LENGTH become `<kind>:sha256:<hex>`.
    """
    if guid and guid.strip():
        return _short("guid", guid.strip())
    if link:
        return _short("link", canonicalize_url(link))
    content = f"{title or ''}\n{summary or ''}".encode()
    return "hash:" + hashlib.sha256(content).hexdigest()


def same_link(first: str | None, second: str | None) -> bool:
    """Whether two item links name the same article (tracking parameters aside)."""
    if first is None or second is None:
        return first == second
    return canonicalize_url(first) == canonicalize_url(second)


def reused_key(item: FeedItem) -> str:
    """The key of an item whose GUID an earlier item with another link already holds: the
    GUID and the link together, so each article the feed announces is processed."""
    link = canonicalize_url(item.url) if item.url else ""
    return f"{item.key}#{hashlib.sha256(link.encode()).hexdigest()[:16]}"


def oldest_first(items: Sequence[FeedItem]) -> list[FeedItem]:
    """The items in the order they were published: by date when every one is dated, else
    the reverse of the feed's order (feeds list newest first: RSS and Atom practice)."""
    ordered = list(reversed(items))
    if all(item.published is not None for item in ordered):
        ordered.sort(key=lambda item: item.published or datetime.min.replace(tzinfo=UTC))
    return ordered


def repair_utf8(body: bytes, content_type: str | None) -> tuple[bytes, int]:
    """A UTF-8 feed with a few stray invalid bytes, with those bytes replaced (U+FFFD);
    and how many were. Left as it is, feedparser would decode the whole document as
    windows-1252 and garble every item's non-ASCII text. A document that is mostly not
    UTF-8 (its declaration lies) is left to feedparser's own fallback."""
    declared = _declared_charset(body, content_type)
    if declared not in ("utf-8", "utf8"):
        return body, 0
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return body, 0
    text, invalid = decode_utf8(body)
    valid_non_ascii = sum(1 for character in text if ord(character) > 0x7F) - invalid
    if valid_non_ascii < invalid:
        return body, 0
    return text.encode("utf-8"), invalid


def _declared_charset(body: bytes, content_type: str | None) -> str:
    """The charset the HTTP header, else the XML declaration, states; XML's default UTF-8."""
    if content_type and (header := _CHARSET.search(content_type)):
        return header[1].lower()
    if declaration := _XML_ENCODING.match(body[:200]):
        return declaration[1].decode("ascii").lower()
    return "utf-8"


def _short(kind: str, value: str) -> str:
    key = f"{kind}:{value}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{kind}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"


def _item(entry: Mapping[str, Any], *, feed_url: str) -> FeedItem:
    title = html_to_text(entry.get("title"))
    summary = html_to_text(entry.get("summary"))
    if summary is None and entry.get("content"):
        summary = html_to_text(entry["content"][0].get("value"))
    link = entry.get("link")
    if entry.get("guidislink") and not _is_web_url(link):
        # feedparser copies a permalink GUID into the link; "item-1" is no address to
        # fetch, and resolved against the feed's URL it would name some other page.
        link = None
    link = _absolute_link(link, feed_url)
    return FeedItem(
        key=item_key(guid=entry.get("id"), link=link, title=title, summary=summary),
        url=link,
        title=title,
        summary=summary,
        published=_utc(entry.get("published_parsed") or entry.get("updated_parsed")),
    )


def _is_web_url(value: str | None) -> bool:
    try:
        return bool(value) and urlsplit(str(value).strip()).scheme in ("http", "https")
    except ValueError:
        return False


def _absolute_link(link: str | None, feed_url: str) -> str | None:
    """Resolve a relative item link against the feed URL; keep only http(s) links."""
    if not link or not link.strip():
        return None
    try:
        absolute = urljoin(feed_url, link.strip())
        scheme = urlsplit(absolute).scheme
    except ValueError:  # "http://[::1": urllib rejects a broken IPv6 host
        return None
    return absolute if scheme in ("http", "https") else None


def _utc(parsed: Any) -> datetime | None:
    """feedparser's `*_parsed` values are time.struct_time already normalized to UTC."""
    if not parsed:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in parsed[:6])
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _ttl_seconds(feed: Mapping[str, Any]) -> int | None:
    """RSS 2.0 <ttl> (minutes), else sy:updatePeriod / sy:updateFrequency, in seconds."""
    ttl = _positive_int(feed.get("ttl"))
    if ttl is not None:
        return ttl * 60
    period = _SY_PERIODS.get(str(feed.get("sy_updateperiod", "")).strip().lower())
    if period is None:
        return None
    frequency = _positive_int(feed.get("sy_updatefrequency")) or 1  # spec default: 1
    return max(period // frequency, 1)


def _positive_int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _warnings(parsed: Mapping[str, Any]) -> list[str]:
    if not parsed.get("bozo"):
        return []
    exc = parsed.get("bozo_exception")
    return [f"{type(exc).__name__}: {exc}" if exc is not None else "malformed feed"]
