"""Which feeds are watched, as people change it: feeds added on the desk or by OPML
import, stopped there, and stopped feeds resumed. (feeds.toml's own feeds follow the file:
`worker.store.configured`.)

Each function runs inside the caller's transaction (`worker.store.engine.transaction`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.store.feeds import stop_polling
from worker.store.schema import Feed

DESK = "desk"  # a feed's origin: added on the desk or by OPML import, not from feeds.toml


@dataclass(frozen=True, slots=True)
class KnownFeed:
    """A stored feed an address belongs to (its URL, or where it moved to)."""

    feed_id: str
    watched: bool  # False: a feeds.toml feed that left the file (the file may bring it back)


def feed_urls(session: Session) -> dict[str, KnownFeed]:
    """The feed each stored address belongs to (URLs and where they moved to). A feed
    the desk stopped watching is not listed: adding its address again watches it again."""
    urls: dict[str, KnownFeed] = {}
    rows = session.execute(
        select(Feed.id, Feed.url, Feed.moved_to, Feed.enabled).where(
            Feed.enabled.is_(True) | (Feed.origin != DESK)
        )
    )
    for feed_id, url, moved_to, enabled in rows:
        for address in (url, moved_to):
            if address:
                urls[address] = KnownFeed(feed_id, bool(enabled))
    return urls


def add_desk_feed(
    session: Session,
    feed_id: str,
    url: str,
    title: str | None,
    every: int,
    now: datetime,
    known: dict[str, KnownFeed],
) -> str | None:
    """A feed added on the desk or by OPML import, due now; kept when feeds.toml changes.
    None when added; else why not. `known` is `feed_urls` as the caller read it in this
    transaction (the caller has checked `url` against it).

    One the desk stopped watching (the same URL, so the same id) is watched again, as a
    new subscription: what its last polls said (stopped, errors, validators) is dropped.
    Unless it had moved to an address another feed now watches: both would poll it."""
    earlier = session.get(Feed, feed_id)
    if earlier is not None:
        if earlier.origin != DESK or earlier.enabled:
            return f"the feed id {feed_id} is taken"
        elsewhere = known.get(earlier.moved_to or "")
        if elsewhere is not None:
            return f"it moved to {earlier.moved_to}, already watched (as {elsewhere.feed_id})"
        earlier.enabled, earlier.next_check_at = True, now
        earlier.title, earlier.poll_every_seconds = title or earlier.title, every
        earlier.stopped, earlier.not_found_streak = None, 0
        earlier.error_count, earlier.last_error = 0, None
        earlier.etag = earlier.last_modified = earlier.body_hash = None
        session.flush()
        return None
    session.add(
        Feed(
            id=feed_id,
            url=url,
            title=title,
            poll_every_seconds=every,
            enabled=True,
            origin=DESK,
            next_check_at=now,
            created_at=now,
        )
    )
    session.flush()
    return None


def stop_watching(session: Session, feed_id: str) -> Literal["stopped", "missing", "configured"]:
    """Stop polling a feed added on the desk ("stopped", also when it was already), unless
    there is no such feed ("missing") or feeds.toml lists it ("configured": that file
    decides). Its items, articles and alerts stay: they are the stories' history. What
    it held back is forgotten, as for a feed that leaves feeds.toml."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        return "missing"
    if not feed.enabled:
        return "stopped"  # stopped before, or a feeds.toml feed that left the file
    if feed.origin != DESK:
        return "configured"
    stop_polling(session, feed)
    return "stopped"


def resume(session: Session, feed_id: str, now: datetime) -> Literal["resumed", "missing", "off"]:
    """Poll a stopped feed again, now: "resumed"; "missing" when there is no such feed,
    "off" when nothing polls it anyway (it left feeds.toml, or the desk stopped watching
    it: adding it again is what starts it)."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        return "missing"
    if not feed.enabled:
        return "off"
    feed.stopped, feed.not_found_streak, feed.error_count = None, 0, 0
    feed.next_check_at = now
    return "resumed"
