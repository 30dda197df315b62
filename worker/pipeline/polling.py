"""Poll feeds politely: claim the due ones, conditional GET, parse, record new items.

Politeness (STYLE habit 5): ETag/Last-Modified validators, no parsing when the body did
not change, the feed's own TTL honoured, exponential backoff after errors, and a server's
Retry-After (RFC 9110 §10.2.3) respected as the earliest next check. A permanent redirect
is remembered; a feed that is gone (410, or 404 again and again) stops being polled.

Bounded: a poll takes at most NEW_ITEMS_PER_POLL new items, oldest first, and fewer when
the feed already has ITEMS_IN_FLIGHT_PER_FEED waiting. Up to HELD_ITEMS_PER_FEED of the
rest are recorded as held, and the feed's next checks, BACKLOG_DELAY_SECONDS apart,
release them a batch at a time without fetching it again: a feed of 50,000 items is read
three times (20,000 held a read), not once per batch of 100.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from structlog.contextvars import bound_contextvars
from structlog.typing import FilteringBoundLogger

from worker.errors import FeedParseError, FetchError, backoff_delay
from worker.feeds.parse import parse_feed
from worker.models import ParsedFeed, PollStatus
from worker.observe import metrics
from worker.observe.logs import get_logger
from worker.pipeline.runtime import Runtime
from worker.store import feeds
from worker.store.engine import transaction

log = get_logger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
CLAIM_LEASE = timedelta(minutes=10)  # a claimed feed whose poll never ran is retried after this
CLAIM_BATCH = 500
MAX_CLAIMS_PER_TICK = 50_000
MAX_BACKOFF_SECONDS = 24 * 3600.0
MAX_TTL_SECONDS = 6 * 3600.0
# The first retry of a failed poll: soon (a first run without network should not sit idle
# for twice the interval), then doubling; a server's Retry-After still comes first.
FIRST_RETRY_SECONDS = 30.0
NEW_ITEMS_PER_POLL = 100
ITEMS_IN_FLIGHT_PER_FEED = 200
BACKLOG_DELAY_SECONDS = 30.0
HELD_ITEMS_PER_FEED = 20_000  # past this, the rest of a feed is read again by a later fetch


@dataclass(frozen=True, slots=True)
class PollSummary:
    feed_id: str
    status: PollStatus
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
    2. After n consecutive errors: `backoff_delay` from FIRST_RETRY_SECONDS (or the
       interval, when shorter) doubling with each error, capped at 24 h, at least 90% of
       its window: the first retry comes within a minute, a failing server is not hit
       often.
    3. A server's Retry-After is a floor, never shortened (but capped at 24 h).
    """
    if error_count > 0:
        return backoff_delay(
            error_count,
            base=min(float(poll_every), FIRST_RETRY_SECONDS),
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


def claim_due_feeds(runtime: Runtime, limit: int = CLAIM_BATCH) -> list[str]:
    """Ids of enabled feeds due for a check, each leased so one beat tick owns it."""
    with transaction(runtime.sessions) as session:
        return feeds.claim_due_feeds(session, runtime.clock(), CLAIM_LEASE, limit)


def due_feed_batches(runtime: Runtime) -> Iterator[list[str]]:
    """Every feed due now, claimed a batch per transaction (an index range scan on the
    next check time each), up to MAX_CLAIMS_PER_TICK: 10,000 feeds due every minute are
    all handed out by the tick that finds them, never 200 a tick."""
    claimed = 0
    while claimed < MAX_CLAIMS_PER_TICK:
        batch = claim_due_feeds(runtime, min(CLAIM_BATCH, MAX_CLAIMS_PER_TICK - claimed))
        if batch:
            yield batch
        claimed += len(batch)
        if len(batch) < CLAIM_BATCH:
            return


def poll_feed(runtime: Runtime, feed_id: str) -> PollSummary:
    """Fetch one feed and record its new items (status `new`) for `process_item`."""
    with metrics.observe_stage("poll"):
        summary = _poll_feed(runtime, feed_id)
    metrics.count_poll(summary.status)
    return summary


def _poll_feed(runtime: Runtime, feed_id: str) -> PollSummary:
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        known = feeds.validators(session, feed_id)
        backlog = (
            feeds.release_held(
                session,
                feed_id,
                now,
                batch=NEW_ITEMS_PER_POLL,
                in_flight=ITEMS_IN_FLIGHT_PER_FEED,
                backlog_delay=BACKLOG_DELAY_SECONDS,
            )
            if known is not None
            else None
        )
    if known is None:
        return PollSummary(feed_id, "gone")
    if backlog is not None:
        log.info(
            "feed.backlog",
            feed_id=feed_id,
            new_items=len(backlog.new_item_ids),
            left_for_next_poll=backlog.left_for_later or None,
            next_check_in=backlog.next_check_in,
        )
        return PollSummary(feed_id, "backlog", backlog.new_item_ids, backlog.next_check_in)
    # Bound for every logger, not only ours: what httpx or feedparser log names the feed.
    with bound_contextvars(feed_id=feed_id, url=known.url):
        return _fetch_feed(runtime, feed_id, known, now)


def _fetch_feed(
    runtime: Runtime, feed_id: str, known: feeds.Validators, now: datetime
) -> PollSummary:
    url, etag, last_modified, body_hash = (
        known.url,
        known.etag,
        known.last_modified,
        known.body_hash,
    )
    bound = log.bind(feed_id=feed_id, url=url)
    try:
        result = runtime.fetch_client().get(
            url, etag=etag, last_modified=last_modified, accept=FEED_ACCEPT
        )
        if result.not_modified:
            return _record_success(
                runtime, feed_id, now, "not_modified", status_code=304, moved_to=result.moved_to
            )
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
                moved_to=result.moved_to,
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
        moved_to=result.moved_to,
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
    status: PollStatus,
    *,
    status_code: int,
    parsed: ParsedFeed | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    body_hash: str | None = None,
    moved_to: str | None = None,
) -> PollSummary:
    with transaction(runtime.sessions) as session:
        record = feeds.record_success(
            session,
            feed_id,
            now,
            lambda every, ttl, _: next_check_delay(every, ttl=ttl),
            status_code=status_code,
            items=parsed.items if parsed else None,
            title=parsed.title if parsed else None,
            ttl_seconds=parsed.ttl_seconds if parsed else None,
            etag=etag,
            last_modified=last_modified,
            body_hash=body_hash,
            unchanged=status == "unchanged",
            moved_to=moved_to,
            batch=NEW_ITEMS_PER_POLL,
            in_flight=ITEMS_IN_FLIGHT_PER_FEED,
            backlog_delay=BACKLOG_DELAY_SECONDS,
            hold=HELD_ITEMS_PER_FEED,
        )
    if record is None:
        return PollSummary(feed_id, "gone")
    new_ids, delay = record.new_item_ids, record.next_check_in
    event = {"fetched": "feed.polled", "not_modified": "feed.not_modified"}.get(
        status, "feed.unchanged"
    )
    log.info(
        event,
        feed_id=feed_id,
        status_code=status_code,
        new_items=len(new_ids),
        items_in_feed=len(parsed.items) if parsed else None,
        left_for_next_poll=record.left_for_later or None,
        moved_to=moved_to,
        next_check_in=round(delay, 1),
    )
    return PollSummary(feed_id, status, new_ids, delay)


def _record_failure(
    runtime: Runtime,
    feed_id: str,
    now: datetime,
    exc: Exception,
    status_code: int | None,
    retry_after: float | None,
) -> PollSummary:
    with transaction(runtime.sessions) as session:
        record = feeds.record_failure(
            session,
            feed_id,
            now,
            lambda every, _, errors: next_check_delay(
                every, error_count=errors, retry_after=retry_after
            ),
            error=f"{type(exc).__name__}: {exc}",
            status_code=status_code,
        )
    if record is None:
        return PollSummary(feed_id, "gone")
    error_count, error, delay = record.error_count, record.error, record.next_check_in
    if record.stopped:
        log.error("feed.stopped", feed_id=feed_id, reason=record.stopped, error=error)
        return PollSummary(feed_id, "stopped", (), None, record.stopped)
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
