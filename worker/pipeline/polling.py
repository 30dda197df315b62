"""Poll feeds politely: claim the due ones, conditional GET, parse, record new items.

Politeness (STYLE habit 5): ETag/Last-Modified validators, no parsing when the body did
not change, the feed's own TTL honoured, exponential backoff after errors, and a server's
Retry-After (RFC 9110 §10.2.3) respected as the earliest next check.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from structlog.typing import FilteringBoundLogger

from worker.errors import FeedParseError, FetchError, backoff_delay
from worker.feeds.parse import parse_feed
from worker.models import ParsedFeed
from worker.observe import metrics
from worker.observe.logs import get_logger
from worker.pipeline.runtime import Runtime
from worker.store.engine import transaction
from worker.store.schema import Feed, Item

log = get_logger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
CLAIM_LEASE = timedelta(minutes=10)  # a claimed feed whose poll never ran is retried after this
MAX_BACKOFF_SECONDS = 24 * 3600.0
MAX_TTL_SECONDS = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class PollSummary:
    feed_id: str
    status: str  # fetched | not_modified | unchanged | error | gone
    new_item_ids: tuple[int, ...] = field(default=())
    next_check_in: float | None = None
    error: str | None = None


def next_check_delay(
    poll_every: float,
    *,
    error_count: int = 0,
    ttl: float | None = None,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next check.

    1. On success: the configured interval, or the feed's TTL when longer (capped at 6 h),
       plus up to 10% so feeds that share an interval do not poll in lockstep.
    2. After n consecutive errors: `backoff_delay` from the interval (interval x 2^n,
       capped at 24 h), at least 90% of its window: a failing server is not hit early.
    3. A server's Retry-After is a floor, never shortened (but capped at 24 h).
    """
    if error_count > 0:
        return backoff_delay(
            error_count + 1,
            base=poll_every,
            cap=MAX_BACKOFF_SECONDS,
            jitter=0.1,
            floor=retry_after,
            rng=rng,
        )
    delay = float(poll_every)
    if ttl:
        delay = max(delay, min(ttl, MAX_TTL_SECONDS))
    delay *= 1.0 + 0.1 * (rng or random).random()
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
    return delay


def claim_due_feeds(runtime: Runtime, limit: int = 200) -> list[str]:
    """Ids of enabled feeds due for a check, each leased so one beat tick owns it."""
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        feeds = session.scalars(
            select(Feed)
            .where(Feed.enabled.is_(True), Feed.next_check_at <= now)
            .order_by(Feed.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for feed in feeds:
            feed.next_check_at = now + CLAIM_LEASE
        return [feed.id for feed in feeds]


def poll_feed(runtime: Runtime, feed_id: str) -> PollSummary:
    """Fetch one feed and record its new items (status `new`) for `process_item`."""
    with metrics.observe_stage("poll"):
        summary = _poll_feed(runtime, feed_id)
    metrics.count_poll(summary.status)
    return summary


def _poll_feed(runtime: Runtime, feed_id: str) -> PollSummary:
    with transaction(runtime.sessions) as session:
        feed = session.get(Feed, feed_id)
        if feed is None or not feed.enabled:
            return PollSummary(feed_id, "gone")
        url, etag, last_modified, body_hash = (
            feed.url,
            feed.etag,
            feed.last_modified,
            feed.body_hash,
        )
    bound = log.bind(feed_id=feed_id, url=url)
    now = runtime.clock()
    try:
        with runtime.fetch_client() as client:
            result = client.get(url, etag=etag, last_modified=last_modified, accept=FEED_ACCEPT)
        if result.not_modified:
            return _record_success(runtime, feed_id, now, "not_modified", status_code=304)
        digest = hashlib.sha256(result.body).hexdigest()
        if digest == body_hash:
            # Servers without validators still send identical bytes: skip parsing them.
            return _record_success(
                runtime,
                feed_id,
                now,
                "unchanged",
                status_code=result.status_code,
                etag=result.etag,
                last_modified=result.last_modified,
            )
        parsed = _parse(result.body, result.url, result.headers, bound)
    except FetchError as exc:
        return _record_failure(runtime, feed_id, now, exc, exc.status_code, exc.retry_after_seconds)
    except FeedParseError as exc:
        return _record_failure(runtime, feed_id, now, exc, None, None)
    for warning in parsed.warnings:
        bound.info("feed.parse_warning", warning=warning)
    return _record_success(
        runtime,
        feed_id,
        now,
        "fetched",
        status_code=result.status_code,
        parsed=parsed,
        etag=result.etag,
        last_modified=result.last_modified,
        body_hash=digest,
    )


def _parse(
    body: bytes, url: str, headers: Mapping[str, str], bound: FilteringBoundLogger
) -> ParsedFeed:
    """parse_feed, where a feed that breaks the parser in a way nobody foresaw is this
    feed's failure (recorded, backed off), not the worker's; the traceback is logged."""
    try:
        return parse_feed(body, url=url, headers=headers)
    except FeedParseError:
        raise
    except Exception as exc:
        bound.exception("feed.parser_crashed")
        raise FeedParseError(f"{url}: the parser failed: {type(exc).__name__}: {exc}") from exc


def _record_success(
    runtime: Runtime,
    feed_id: str,
    now: datetime,
    status: str,
    *,
    status_code: int,
    parsed: ParsedFeed | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    body_hash: str | None = None,
) -> PollSummary:
    new_ids: list[int] = []
    with transaction(runtime.sessions) as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            return PollSummary(feed_id, "gone")
        if parsed is not None:
            new_ids = _insert_new_items(session, feed_id, parsed, now)
            feed.etag, feed.last_modified, feed.body_hash = etag, last_modified, body_hash
            feed.ttl_seconds = parsed.ttl_seconds
            if parsed.title and not feed.title:
                feed.title = parsed.title
        elif status == "unchanged":
            feed.etag = etag or feed.etag
            feed.last_modified = last_modified or feed.last_modified
        delay = next_check_delay(feed.poll_every_seconds, ttl=feed.ttl_seconds)
        feed.next_check_at = now + timedelta(seconds=delay)
        feed.last_checked_at = feed.last_success_at = now
        feed.last_status = status_code
        feed.error_count, feed.last_error = 0, None
        feed.items_last_poll = len(new_ids)
        feed.items_total += len(new_ids)
    event = {"fetched": "feed.polled", "not_modified": "feed.not_modified"}.get(
        status, "feed.unchanged"
    )
    log.info(
        event,
        feed_id=feed_id,
        status_code=status_code,
        new_items=len(new_ids),
        items_in_feed=len(parsed.items) if parsed else None,
        next_check_in=round(delay, 1),
    )
    return PollSummary(feed_id, status, tuple(new_ids), delay)


def _insert_new_items(
    session: Session, feed_id: str, parsed: ParsedFeed, now: datetime
) -> list[int]:
    keys = [item.key for item in parsed.items]
    known = set(
        session.scalars(select(Item.key).where(Item.feed_id == feed_id, Item.key.in_(keys)))
    )
    rows = [
        Item(
            feed_id=feed_id,
            key=item.key,
            url=item.url,
            title=item.title,
            summary=item.summary,
            published=item.published,
            status="new",
            queued_at=now,
        )
        for item in parsed.items
        if item.key not in known
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def _record_failure(
    runtime: Runtime,
    feed_id: str,
    now: datetime,
    exc: Exception,
    status_code: int | None,
    retry_after: float | None,
) -> PollSummary:
    with transaction(runtime.sessions) as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            return PollSummary(feed_id, "gone")
        feed.error_count += 1
        feed.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        feed.last_status = status_code
        feed.last_checked_at = now
        delay = next_check_delay(
            feed.poll_every_seconds, error_count=feed.error_count, retry_after=retry_after
        )
        feed.next_check_at = now + timedelta(seconds=delay)
        error_count, error = feed.error_count, feed.last_error
    log.warning(
        "feed.poll_failed",
        feed_id=feed_id,
        error=error,
        error_type=type(exc).__name__,
        status_code=status_code,
        transient=bool(getattr(exc, "transient", False)),
        retry_after=retry_after,
        error_count=error_count,
        next_check_in=round(delay, 1),
    )
    return PollSummary(feed_id, "error", (), delay, error)
