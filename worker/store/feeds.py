"""The feeds table as polling uses it: claim the due feeds, read a feed's validators,
record a poll's success (with its new items, oldest first and at most a batch) or its
failure (a feed that is gone stops being polled), and hand out a held backlog.

A poll that finds more new items than a batch records the rest as `held` (up to
`hold`): later checks of the feed release them a batch at a time, oldest first, without
fetching or parsing the feed again. Only items past `hold` are left for a later fetch.

Each function runs inside the caller's transaction (`worker.store.engine.transaction`).
When the next check is due is the use case's decision, not the store's: it is passed in
as `next_delay(poll_every_seconds, ttl_seconds, error_count)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from worker.feeds.parse import oldest_first, reused_key, same_link
from worker.models import FeedItem
from worker.store.schema import Feed, Item

# 404s in a row after which a feed stops being polled: one or two are a deploy or a
# misconfigured CDN, this many (a day apart at full backoff) are a feed taken down.
STOP_AFTER_NOT_FOUND = 5
_KEY_CHUNK = 500  # keys per IN (...) query: SQLite caps a statement's parameters

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
    left_for_later: int = 0  # new items beyond this poll's batch, held or left unread
    stopped: str | None = None  # why the feed is no longer polled


HELD = "held"  # an item's status: recorded, waiting for room in the feed's batches


def claim_due_feeds(session: Session, now: datetime, lease: timedelta, limit: int) -> list[str]:
    """Ids of enabled feeds due for a check, each leased so one beat tick owns it."""
    feeds = session.scalars(
        select(Feed)
        .where(Feed.enabled.is_(True), Feed.stopped.is_(None), Feed.next_check_at <= now)
        .order_by(Feed.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for feed in feeds:
        feed.next_check_at = now + lease
    return [feed.id for feed in feeds]


def validators(session: Session, feed_id: str) -> Validators | None:
    """The URL to poll (where a permanent redirect moved it) and its validators; None when
    the feed is gone, disabled or stopped."""
    feed = session.get(Feed, feed_id)
    if feed is None or not feed.enabled or feed.stopped is not None:
        return None
    return Validators(feed.moved_to or feed.url, feed.etag, feed.last_modified, feed.body_hash)


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
    moved_to: str | None = None,
    batch: int = 100,
    in_flight: int = 200,
    backlog_delay: float = 30.0,
    hold: int = 0,
) -> PollRecord | None:
    """A poll that worked: `items` when the body was parsed (new ones are inserted),
    `unchanged` when it was the same bytes as last time; None when the feed is gone.

    At most `batch` new items are taken, oldest first, and fewer when the feed already has
    `in_flight` items waiting to be processed: one huge feed cannot bury the others'. Up
    to `hold` of the rest are held (`release_held` hands them out, `backlog_delay`
    seconds apart); any past that are left unread, and then the validators are not kept,
    so the next fetch reads the body again instead of being told "not modified".
    """
    feed = session.get(Feed, feed_id)
    if feed is None:
        return None
    new_ids: list[int] = []
    left = 0
    if items is not None:
        room = max(0, min(batch, in_flight - waiting_items(session, feed_id)))
        # A feed stopped while it was being polled holds nothing back: nothing would
        # ever release it.
        new_ids, held, unread = insert_new_items(
            session, feed_id, items, now, limit=room, hold=hold if feed.enabled else 0
        )
        left = held + unread
        feed.held_items += held
        if unread:
            feed.etag = feed.last_modified = feed.body_hash = None
        else:
            feed.etag, feed.last_modified, feed.body_hash = etag, last_modified, body_hash
        feed.ttl_seconds = ttl_seconds
        if title and not feed.title:
            feed.title = title
    elif unchanged:
        feed.etag = etag or feed.etag
        feed.last_modified = last_modified or feed.last_modified
    if moved_to and moved_to != (feed.moved_to or feed.url):
        feed.moved_to = moved_to
    delay = next_delay(feed.poll_every_seconds, feed.ttl_seconds, 0)
    if left:
        delay = min(delay, backlog_delay)
    feed.next_check_at = now + timedelta(seconds=delay)
    feed.last_checked_at = feed.last_success_at = now
    feed.last_status = status_code
    feed.error_count, feed.last_error = 0, None
    feed.not_found_streak = 0
    feed.items_last_poll = len(new_ids)
    feed.items_total += len(new_ids)
    return PollRecord(tuple(new_ids), delay, left_for_later=left)


def record_failure(
    session: Session,
    feed_id: str,
    now: datetime,
    next_delay: NextDelay,
    *,
    error: str,
    status_code: int | None,
) -> PollRecord | None:
    """A poll that failed: one more consecutive error; None when the feed is gone. A 410,
    or a 404 on STOP_AFTER_NOT_FOUND polls in a row, stops polling (`stopped` says why)."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        return None
    feed.error_count += 1
    feed.last_error = error[:2000]
    feed.last_status = status_code
    feed.last_checked_at = now
    feed.not_found_streak = feed.not_found_streak + 1 if status_code == 404 else 0
    day = now.date().isoformat()
    if status_code == 410:
        feed.stopped = f"HTTP 410 Gone on {day}: the site removed the feed"
    elif feed.not_found_streak >= STOP_AFTER_NOT_FOUND:
        feed.stopped = f"HTTP 404 Not Found on {feed.not_found_streak} polls in a row (last {day})"
    delay = next_delay(feed.poll_every_seconds, None, feed.error_count)
    feed.next_check_at = now + timedelta(seconds=delay)
    return PollRecord((), delay, feed.error_count, feed.last_error, stopped=feed.stopped)


def release_held(
    session: Session,
    feed_id: str,
    now: datetime,
    *,
    batch: int,
    in_flight: int,
    backlog_delay: float,
) -> PollRecord | None:
    """The feed's check when it holds a backlog: no fetch (the last one's items are
    recorded), up to `batch` held items released oldest first (none while `in_flight`
    wait), the next check `backlog_delay` away. None when it holds none: the feed is
    fetched."""
    feed = session.get(Feed, feed_id)
    if feed is None or not feed.held_items:
        return None
    held = _held_ids(session, feed_id, limit=batch)
    room = max(0, min(batch, in_flight - waiting_items(session, feed_id)))
    released: list[int] = []
    if held[:room]:
        # Still held, checked by the update itself: a second check of the feed running at
        # the same time (its poll claimed again after a long wait) read the same ids, and
        # on PostgreSQL waits here for this one, then finds them taken and releases none.
        released = list(
            session.scalars(
                update(Item)
                .where(Item.id.in_(held[:room]), Item.status == HELD)
                .values(status="new", queued_at=now)
                .returning(Item.id)
            )
        )
        released.sort()
    # Counted, not decremented: the count is the flag every other check reads, and a
    # held row deleted meanwhile (a pruned feed) must not keep it set.
    feed.held_items = held_items(session, feed_id)
    feed.next_check_at = now + timedelta(seconds=backlog_delay)
    feed.items_last_poll = len(released)
    feed.items_total += len(released)
    feed.last_checked_at = now
    if released:
        # What the last fetch recorded, handed out: the feed is not stale while it
        # drains. A check that could hand out nothing (its items stuck in flight) is no
        # success, so a feed whose items never finish is flagged in time.
        feed.last_success_at = now
    return PollRecord(tuple(released), backlog_delay, left_for_later=feed.held_items)


def stop_polling(session: Session, feed: Feed) -> None:
    """Nothing polls the feed from now on (it left feeds.toml, or the desk stopped
    watching it); what it held back is forgotten, since nothing would ever release it.
    Its items, articles and alerts stay: they are the stories' history."""
    feed.enabled = False
    if feed.held_items:
        drop_held(session, feed.id)


def drop_held(session: Session, feed_id: str) -> int:
    """Forget the feed's held items (it left the configuration, or now names another
    address): never processed, they are listed again if the feed still has them."""
    dropped = session.execute(
        delete(Item).where(Item.feed_id == feed_id, Item.status == HELD)
    ).rowcount  # type: ignore[attr-defined]
    feed = session.get(Feed, feed_id)
    if feed is not None:
        feed.held_items = 0
        if dropped:
            # So that the next fetch, if the feed is ever polled again, reads the body
            # instead of being told "not modified": that is how they are listed again.
            feed.etag = feed.last_modified = feed.body_hash = None
    return int(dropped or 0)


def _held_ids(session: Session, feed_id: str, *, limit: int) -> list[int]:
    """The first `limit` held items, oldest first (they were recorded in that order)."""
    return list(
        session.scalars(
            select(Item.id)
            .where(Item.feed_id == feed_id, Item.status == HELD)
            .order_by(Item.id)
            .limit(limit)
        )
    )


def held_items(session: Session, feed_id: str) -> int:
    """The feed's held items."""
    count = session.scalar(
        select(func.count()).select_from(Item).where(Item.feed_id == feed_id, Item.status == HELD)
    )
    return int(count or 0)


def waiting_items(session: Session, feed_id: str) -> int:
    """The feed's items still waiting to be processed."""
    count = session.scalar(
        select(func.count()).select_from(Item).where(Item.feed_id == feed_id, Item.status == "new")
    )
    return int(count or 0)


def insert_new_items(
    session: Session,
    feed_id: str,
    items: Sequence[FeedItem],
    now: datetime,
    *,
    limit: int,
    hold: int = 0,
) -> tuple[list[int], int, int]:
    """Insert up to `limit` of the items this feed has not listed before (status `new`),
    oldest first, so their ids (and the order they are processed in) follow publication,
    and up to `hold` more after them as `held`. Returns the new ones' ids, how many were
    held and how many were left out.

    An item whose GUID an earlier item holds under another link is new (`reused_key`).
    """
    # Each key's link: stored, else the first item of this poll to list it. An item with
    # the key and another link is keyed by GUID and link together (`reused_key`), so the
    # same (GUID, link) pair gets the same key whatever its place in the document.
    owners: dict[str, str | None] = _known_links(session, feed_id, [item.key for item in items])
    fresh: list[FeedItem] = []
    reused: dict[str, FeedItem] = {}
    for item in items:
        if item.key not in owners:
            owners[item.key] = item.url
            fresh.append(item)
        elif not same_link(owners[item.key], item.url):
            again = replace(item, key=reused_key(item))
            reused.setdefault(again.key, again)
    # A reused GUID's own key may be stored already (an earlier poll took that link).
    taken = _known_links(session, feed_id, list(reused))
    fresh += [item for key, item in reused.items() if key not in taken]
    ordered = oldest_first(fresh)
    kept = ordered[: limit + hold]
    rows = [
        Item(
            feed_id=feed_id,
            key=item.key,
            url=item.url,
            title=item.title,
            summary=item.summary,
            published=item.published,
            status="new" if position < limit else HELD,
            queued_at=now if position < limit else None,
        )
        for position, item in enumerate(kept)
    ]
    session.add_all(rows)
    session.flush()
    new_ids = [row.id for row in rows[:limit]]
    return new_ids, len(rows) - len(new_ids), len(ordered) - len(rows)


def _known_links(session: Session, feed_id: str, keys: list[str]) -> dict[str, str | None]:
    """The link stored under each of these keys the feed already has."""
    known: dict[str, str | None] = {}
    for start in range(0, len(keys), _KEY_CHUNK):
        chunk = keys[start : start + _KEY_CHUNK]
        rows = session.execute(
            select(Item.key, Item.url).where(Item.feed_id == feed_id, Item.key.in_(chunk))
        )
        known.update({key: url for key, url in rows})
    return known
