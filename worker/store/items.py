"""An item's run through `process_item`, as rows: taken up (one more attempt), and
finished with its outcome. Each function runs inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from worker.models import ItemOutcome, item_outcome
from worker.store.schema import Feed, Item
from worker.utc import utcnow


@dataclass(frozen=True, slots=True)
class QueuedItem:
    """What processing needs of an item, read when its run starts."""

    feed_id: str
    feed_title: str | None
    url: str | None
    title: str | None
    summary: str | None
    published: datetime | None
    key: str
    attempts: int  # this run included
    seen: datetime  # when a poll first saw the item


@dataclass(frozen=True, slots=True)
class Settled:
    """The item needs no run: it is gone, already processed, or out of attempts."""

    outcome: ItemOutcome
    error: str | None = None


def take_up(session: Session, item_id: int, max_attempts: int) -> QueuedItem | Settled:
    """Count one more attempt at a `new` item and read it; or say why it needs no run."""
    item = session.get(Item, item_id)
    if item is None:
        return Settled("missing")
    if item.status != "new":
        # Redelivered message (acks_late) or a sweep that raced the first run.
        return Settled(item_outcome(item.outcome or item.status))
    if item.attempts >= max_attempts:
        # A poison item (one that crashes every run) must not be retried forever.
        error = f"too many attempts; last error: {item.error}" if item.error else None
        return Settled("failed", error or "too many attempts")
    item.attempts += 1
    feed = session.get(Feed, item.feed_id)
    return QueuedItem(
        feed_id=item.feed_id,
        feed_title=feed.title if feed else None,
        url=item.url,
        title=item.title,
        summary=item.summary,
        published=item.published,
        key=item.key,
        attempts=item.attempts,
        seen=item.created_at,
    )


def finish(
    session: Session,
    item_id: int,
    outcome: ItemOutcome,
    article_id: int | None,
    error: str | None,
) -> None:
    """Record how the item's run ended (`failed` stays failed; every other outcome is done)."""
    item = session.get(Item, item_id)
    if item is None:
        return
    item.status = "failed" if outcome == "failed" else "done"
    item.outcome = outcome
    item.article_id = article_id
    item.error = error
    item.processed_at = utcnow()
