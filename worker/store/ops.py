"""What an operator asks the store: feed health, host quality, the outbox by destination.

Query functions over the store that return frozen dataclasses, shared by the operator
commands (`storywatch status`, `storywatch alerts ...`) and the metrics collector that
reads current state at scrape time. The database is the only source of truth, so every
worker process and every command sees the same numbers.

What this module must not do:
- write anything (`worker.store.alerts.retry_deliveries` is the one operator action);
- take the write lock for a read: `reader_sessions` opens SQLite without BEGIN IMMEDIATE
  (the pipeline's engine takes it on every transaction), so a status call or a scrape
  never queues behind, or holds up, the workers;
- talk to the broker to enqueue work (the CLI does that) or format anything for humans.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from worker.store.schema import Article, Delivery, Development, Feed, Item

STALE_AFTER_ERRORS = 5
STALE_MIN_SILENCE = timedelta(hours=1)
STALE_INTERVALS = 3  # a feed may miss two polls (a slow server, a deploy) before it is stale
DEFAULT_HOST_WINDOW = timedelta(hours=24)
LAST_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class FeedStatus:
    id: str
    url: str
    title: str | None
    enabled: bool
    poll_every_seconds: int
    last_success_at: datetime | None
    last_checked_at: datetime | None
    last_status: int | None
    error_count: int
    last_error: str | None  # truncated to LAST_ERROR_CHARS
    next_check_at: datetime
    items_last_poll: int
    items_total: int
    stale_reason: str | None  # None: the feed is healthy (or disabled)
    moved_to: str | None = None  # where a permanent redirect sent it (polled instead)
    stopped: str | None = None  # why it is no longer polled
    origin: str = "config"  # "desk": added on the desk or by OPML import (it can remove it)

    @property
    def stale(self) -> bool:
        return self.stale_reason is not None

    @property
    def reachable(self) -> bool:
        """It answered at least once, and it is still polled."""
        return self.last_success_at is not None and self.stopped is None


@dataclass(frozen=True, slots=True)
class HostStatus:
    """Articles and items from one host within the report's window."""

    host: str
    articles: int
    summary_fallbacks: int  # articles whose page could not be used: the feed summary stood in
    items: int
    items_failed: int

    @property
    def fallback_rate(self) -> float:
        return self.summary_fallbacks / self.articles if self.articles else 0.0

    @property
    def failure_rate(self) -> float:
        return self.items_failed / self.items if self.items else 0.0


@dataclass(frozen=True, slots=True)
class DestinationStatus:
    id: str
    configured: bool  # False: deliveries exist for a destination no longer in the config
    pending: int = 0
    failed: int = 0
    dead: int = 0
    delivered: int = 0
    oldest_waiting_at: datetime | None = None  # oldest pending or failed delivery


@dataclass(frozen=True, slots=True)
class StatusReport:
    generated_at: datetime
    host_window: timedelta
    feeds: tuple[FeedStatus, ...]
    hosts: tuple[HostStatus, ...]
    destinations: tuple[DestinationStatus, ...]
    items_by_outcome: dict[str, int] = field(default_factory=dict)
    developments: int = 0

    @property
    def stale_feeds(self) -> tuple[FeedStatus, ...]:
        return tuple(feed for feed in self.feeds if feed.stale)

    @property
    def dead_deliveries(self) -> int:
        return sum(d.dead for d in self.destinations)

    @property
    def polled_feeds(self) -> tuple[FeedStatus, ...]:
        return tuple(feed for feed in self.feeds if feed.enabled)

    @property
    def reachable_feeds(self) -> int:
        return sum(1 for feed in self.polled_feeds if feed.reachable)

    @property
    def healthy(self) -> bool:
        """What `storywatch status` turns into its exit code (0 healthy, 1 not): no stale
        feed, no dead delivery, and (a service that has never reached a feed has done
        nothing yet) at least one feed reachable."""
        return (
            not self.stale_feeds
            and self.dead_deliveries == 0
            and (self.reachable_feeds > 0 or not self.polled_feeds)
        )


def reader_sessions(database_url: str) -> sessionmaker[Session]:
    """Sessions for reading only, on their own unpooled engine.

    Unpooled so that a process that forks afterwards (the Celery main process serving
    metrics) hands no open connection to its children. On SQLite, pysqlite's own
    transaction handling leaves a SELECT in WAL mode lock-free (SQLite docs, "WAL": readers
    do not block writers), unlike the pipeline engine's BEGIN IMMEDIATE.
    """
    url = make_url(database_url)
    connect_args = {"timeout": 5} if url.get_backend_name() == "sqlite" else {}
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    return sessionmaker(engine, expire_on_commit=False)


def stale_reason(feed: Feed, now: datetime) -> str | None:
    """Why a feed is stale, or None.

    1. A disabled feed is never stale: the operator turned it off.
    2. A stopped feed (gone: 410, repeated 404) is, with its reason.
    3. A feed that never succeeded is, once a poll of it failed: a first run without
       network says so at once instead of "ok".
    4. STALE_AFTER_ERRORS or more consecutive errors.
    5. No success for longer than max(3 x poll interval, 1 h), counted from the feed's
       creation when it never succeeded.
    """
    if not feed.enabled:
        return None
    if feed.stopped:
        return f"stopped: {feed.stopped}"
    if feed.last_success_at is None and feed.error_count:
        return f"never reached ({feed.error_count} failed poll(s))"
    if feed.error_count >= STALE_AFTER_ERRORS:
        return f"{feed.error_count} consecutive errors"
    allowed = max(timedelta(seconds=STALE_INTERVALS * feed.poll_every_seconds), STALE_MIN_SILENCE)
    since = feed.last_success_at or feed.created_at
    if now - since > allowed:
        what = "no success" if feed.last_success_at else "never succeeded"
        return f"{what} for {int((now - since).total_seconds() // 60)} min"
    return None


def feed_statuses(session: Session, now: datetime) -> tuple[FeedStatus, ...]:
    feeds = session.scalars(select(Feed).order_by(Feed.id))
    return tuple(
        FeedStatus(
            id=feed.id,
            url=feed.url,
            title=feed.title,
            enabled=feed.enabled,
            poll_every_seconds=feed.poll_every_seconds,
            last_success_at=feed.last_success_at,
            last_checked_at=feed.last_checked_at,
            last_status=feed.last_status,
            error_count=feed.error_count,
            last_error=truncate_error(feed.last_error),
            next_check_at=feed.next_check_at,
            items_last_poll=feed.items_last_poll,
            items_total=feed.items_total,
            stale_reason=stale_reason(feed, now),
            moved_to=feed.moved_to,
            stopped=feed.stopped,
            origin=feed.origin,
        )
        for feed in feeds
    )


def host_statuses(session: Session, since: datetime) -> tuple[HostStatus, ...]:
    """Per source host, from articles and items created since `since`.

    Hosts are taken from URLs in Python: SQL has no portable URL parser, and the window
    keeps the rows few (a day of articles, not the whole history).
    """
    articles: Counter[str] = Counter()
    fallbacks: Counter[str] = Counter()
    for url, extraction in session.execute(
        select(Article.url, Article.extraction).where(Article.created_at >= since)
    ):
        host = _host(url)
        articles[host] += 1
        fallbacks[host] += extraction == "summary"
    items: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for url, status in session.execute(
        select(Item.url, Item.status).where(Item.created_at >= since)
    ):
        host = _host(url)
        items[host] += 1
        failed[host] += status == "failed"
    return tuple(
        HostStatus(host, articles[host], fallbacks[host], items[host], failed[host])
        for host in sorted(set(articles) | set(items))
    )


def destination_statuses(
    session: Session, configured: tuple[str, ...] = ()
) -> tuple[DestinationStatus, ...]:
    """Outbox counts per destination: every configured one, and any other with rows."""
    counts: dict[str, dict[str, int]] = {dest: {} for dest in configured}
    for dest, status, count in session.execute(
        select(Delivery.destination_id, Delivery.status, func.count()).group_by(
            Delivery.destination_id, Delivery.status
        )
    ):
        counts.setdefault(dest, {})[status] = count
    # A comprehension, not dict(result): a Result has .keys() and would pass for a mapping.
    oldest = {
        dest: moment
        for dest, moment in session.execute(
            select(Delivery.destination_id, func.min(Delivery.created_at))
            .where(Delivery.status.in_(("pending", "failed")))
            .group_by(Delivery.destination_id)
        )
    }
    return tuple(
        DestinationStatus(
            id=dest,
            configured=dest in configured,
            pending=by_status.get("pending", 0),
            failed=by_status.get("failed", 0),
            dead=by_status.get("dead", 0),
            delivered=by_status.get("delivered", 0),
            oldest_waiting_at=aware_utc(oldest.get(dest)),
        )
        for dest, by_status in sorted(counts.items())
    )


def status_report(
    session: Session,
    now: datetime,
    *,
    configured_destinations: tuple[str, ...] = (),
    host_window: timedelta = DEFAULT_HOST_WINDOW,
) -> StatusReport:
    # A new item has no outcome yet: count it under its status ("new").
    outcome = func.coalesce(Item.outcome, Item.status)
    items = {
        name: count
        for name, count in session.execute(select(outcome, func.count()).group_by(outcome))
    }
    developments = session.scalar(select(func.count()).select_from(Development)) or 0
    return StatusReport(
        generated_at=now,
        host_window=host_window,
        feeds=feed_statuses(session, now),
        hosts=host_statuses(session, now - host_window),
        destinations=destination_statuses(session, configured_destinations),
        items_by_outcome=dict(sorted(items.items())),
        developments=developments,
    )


def database_answers(session: Session) -> None:
    """Raise unless the database runs a trivial query (the health check's probe)."""
    session.execute(text("SELECT 1"))


def _host(url: str | None) -> str:
    if not url:
        return "(no url)"
    try:
        return (urlsplit(url).hostname or "(no host)").lower()
    except ValueError:
        return "(bad url)"


def truncate_error(message: str | None) -> str | None:
    if message is None or len(message) <= LAST_ERROR_CHARS:
        return message
    return message[: LAST_ERROR_CHARS - 1] + "…"


def aware_utc(moment: datetime | None) -> datetime | None:
    # func.min() bypasses the UTC column type: SQLite hands back naive text-parsed values.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
