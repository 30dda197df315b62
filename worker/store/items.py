"""An item's run through the pipeline, as rows: taken up (one more attempt), its article
stored, then decided and finished with its outcome. Each function runs inside the
caller's transaction.

An item stays `new` until it is finished; one whose article is stored (`mark_stored`)
waits for `worker.pipeline.processing.decide_item`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
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
    article_id: int | None  # stored by an earlier run, not decided yet


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item whose article is stored and waits for its decision."""

    feed_id: str
    url: str | None
    article_id: int
    seen: datetime


@dataclass(frozen=True, slots=True)
class Settled:
    """The item needs no run: it is gone, already processed, or out of attempts."""

    outcome: ItemOutcome
    error: str | None = None
    article_id: int | None = None  # a stored item's article, kept when it fails


def take_up(session: Session, item_id: int, max_attempts: int) -> QueuedItem | Settled:
    """Count one more attempt at a `new` item and read it; or say why it needs no run.
    An item stored already is read without counting: its attempts are its decision's
    (`to_decide`)."""
    item = session.get(Item, item_id)
    if item is None:
        return Settled("missing")
    if item.status != "new":
        # Redelivered message (acks_late) or a sweep that raced the first run.
        return Settled(item_outcome(item.outcome or item.status))
    if item.article_id is None and item.attempts >= max_attempts:
        # A poison item (one that crashes every run) must not be retried forever.
        error = f"too many attempts; last error: {item.error}" if item.error else None
        return Settled("failed", error or "too many attempts")
    if item.article_id is None:
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
        article_id=item.article_id,
    )


def mark_stored(session: Session, item_id: int, article_id: int, now: datetime) -> None:
    """The item's article is stored: it waits for its decision. Queued now, so the
    sweep gives the decision its own time before taking the item up again. Its attempts
    start again at 0: from here on they count failed decisions (`to_decide`), so a store
    that took several runs leaves the decision all of its own."""
    session.execute(
        update(Item)
        .where(Item.id == item_id)
        .values(article_id=article_id, queued_at=now, attempts=0, error=None)
        .execution_options(synchronize_session=False)
    )


def to_decide(session: Session, item_id: int, max_attempts: int) -> StoredItem | Settled:
    """The stored item to decide; or why there is nothing to decide (finished already,
    never stored: "missing", or out of attempts: "failed", with the error to record)."""
    item = session.get(Item, item_id)
    if item is None or (item.status == "new" and item.article_id is None):
        return Settled("missing")
    if item.status != "new":
        return Settled(item_outcome(item.outcome or item.status))
    if item.attempts >= max_attempts:
        # A decision that fails on every run (note_item_error counted each) stops here.
        error = f"too many attempts; last error: {item.error}" if item.error else None
        return Settled("failed", error or "too many attempts", item.article_id)
    assert item.article_id is not None
    return StoredItem(item.feed_id, item.url, item.article_id, item.created_at)


def undecided(session: Session, article_id: int) -> bool:
    """Whether an item that stored this article still waits for its decision."""
    waiting = session.scalar(
        select(Item.id).where(Item.article_id == article_id, Item.status == "new").limit(1)
    )
    return waiting is not None


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
