"""The feeds table as polling uses it: claim the due feeds, read a feed's validators,
record a poll's success (with its new items) or its failure.

Each function runs inside the caller's transaction (`worker.store.engine.transaction`).
When the next check is due is the use case's decision, not the store's: it is passed in
as `next_delay(poll_every_seconds, ttl_seconds, error_count)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.models import FeedItem
from worker.store.schema import Feed, Item

NextDelay = Callable[[float, int | None, int], float]  # (poll every, ttl, errors) -> seconds


@dataclass(frozen=True, slots=True)
class Validators:
    """What a conditional GET of the feed sends, and the hash of the last body parsed."""

    url: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """A recorded poll: the ids of the items it added, and the seconds to the next one."""

    new_item_ids: tuple[int, ...]
    next_check_in: float
    error_count: int = 0
    error: str | None = None


def claim_due_feeds(session: Session, now: datetime, lease: timedelta, limit: int) -> list[str]:
    """Ids of enabled feeds due for a check, each leased so one beat tick owns it."""
    feeds = session.scalars(
        select(Feed)
        .where(Feed.enabled.is_(True), Feed.next_check_at <= now)
        .order_by(Feed.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for feed in feeds:
        feed.next_check_at = now + lease
    return [feed.id for feed in feeds]


def validators(session: Session, feed_id: str) -> Validators | None:
    """The enabled feed's URL and validators; None when it is gone or disabled."""
    feed = session.get(Feed, feed_id)
    if feed is None or not feed.enabled:
        return None
    return Validators(feed.url, feed.etag, feed.last_modified, feed.body_hash)


def record_success(
    session: Session,
    feed_id: str,
    now: datetime,
    next_delay: NextDelay,
    *,
    status_code: int,
    items: Sequence[FeedItem] | None = None,
    title: str | None = None,
    ttl_seconds: int | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    body_hash: str | None = None,
    unchanged: bool = False,
) -> PollRecord | None:
    """A poll that worked: `items` when the body was parsed (new ones are inserted),
    `unchanged` when it was the same bytes as last time; None when the feed is gone."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        return None
    new_ids: list[int] = []
    if items is not None:
        new_ids = insert_new_items(session, feed_id, items, now)
        feed.etag, feed.last_modified, feed.body_hash = etag, last_modified, body_hash
        feed.ttl_seconds = ttl_seconds
        if title and not feed.title:
            feed.title = title
    elif unchanged:
        feed.etag = etag or feed.etag
        feed.last_modified = last_modified or feed.last_modified
    delay = next_delay(feed.poll_every_seconds, feed.ttl_seconds, 0)
    feed.next_check_at = now + timedelta(seconds=delay)
    feed.last_checked_at = feed.last_success_at = now
    feed.last_status = status_code
    feed.error_count, feed.last_error = 0, None
    feed.items_last_poll = len(new_ids)
    feed.items_total += len(new_ids)
    return PollRecord(tuple(new_ids), delay)


def record_failure(
    session: Session,
    feed_id: str,
    now: datetime,
    next_delay: NextDelay,
    *,
    error: str,
    status_code: int | None,
) -> PollRecord | None:
    """A poll that failed: one more consecutive error; None when the feed is gone."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        return None
    feed.error_count += 1
    feed.last_error = error[:2000]
    feed.last_status = status_code
    feed.last_checked_at = now
    delay = next_delay(feed.poll_every_seconds, None, feed.error_count)
    feed.next_check_at = now + timedelta(seconds=delay)
    return PollRecord((), delay, feed.error_count, feed.last_error)


def insert_new_items(
    session: Session, feed_id: str, items: Sequence[FeedItem], now: datetime
) -> list[int]:
    """Insert the items this feed has not listed before (status `new`); their ids."""
    keys = [item.key for item in items]
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
        for item in items
        if item.key not in known
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]
