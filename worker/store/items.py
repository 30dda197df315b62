"""An item's run through the pipeline, as rows: taken up (one more attempt), its article
stored, and finished with its outcome (its decision's rows are `worker.store.decisions`'s).
Each function runs inside the caller's transaction.

An item stays `new` until it is finished; one whose article is stored (`mark_stored`)
waits for `worker.pipeline.processing.decide_item`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Update, func, select, update
from sqlalchemy.orm import Session

from worker.models import ItemOutcome, item_outcome
from worker.store.schema import Feed, Item
from worker.utc import utcnow

# PostgreSQL: this transaction's commit does not wait for its disk flush (SET LOCAL
# synchronous_commit = off, as a function in a statement's WHERE: no round trip of its own).
NOT_DURABLE = func.set_config("synchronous_commit", "off", True)


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
class Settled:
    """The item needs no run: it is gone, already processed, or out of attempts."""

    outcome: ItemOutcome
    error: str | None = None
    article_id: int | None = None  # a stored item's article, kept when it fails


def take_up(session: Session, item_id: int, max_attempts: int) -> QueuedItem | Settled:
    """Count one more attempt at a `new` item and read it; or say why it needs no run.
    An item stored already is read without counting: its attempts are its decision
    runs' (`start_decision`).

    The count is one UPDATE whose conditions are those under which this answers a
    QueuedItem of an item not stored yet. On PostgreSQL it runs inside the read (a
    data-modifying CTE: one statement, meant to commit alone through
    `worker.store.engine.autocommit`, and not durably, as `start_decision`'s: a count lost
    with the database's crash costs nothing); elsewhere after it."""
    counting = (
        update(Item)
        .where(
            Item.id == item_id,
            Item.status == "new",
            Item.article_id.is_(None),
            Item.attempts < max_attempts,
        )
        .values(attempts=Item.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    # The read sees the row as it was before the count (one snapshot for the statement).
    read: Select[*tuple[Any, ...]] = (
        select(
            Item.feed_id,
            Feed.title,
            Item.url,
            Item.title,
            Item.summary,
            Item.published,
            Item.key,
            Item.attempts,
            Item.created_at,
            Item.article_id,
            Item.status,
            Item.outcome,
            Item.error,
        )
        .outerjoin(Feed, Feed.id == Item.feed_id)
        .where(Item.id == item_id)
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Referenced by nothing: rendered only when added.
        read = read.add_cte(counting.where(NOT_DURABLE.is_not(None)).cte("counting"))
    row = session.execute(read).one_or_none()
    if row is None:
        return Settled("missing")
    taken = _taken(_Read(*row), max_attempts)
    if not postgres and isinstance(taken, QueuedItem) and taken.article_id is None:
        session.execute(counting)
    return taken


class _Read(NamedTuple):
    """An item's row as `take_up` reads it, before this run's attempt is counted."""

    feed_id: str
    feed_title: str | None
    url: str | None
    title: str | None
    summary: str | None
    published: datetime | None
    key: str
    attempts: int
    created_at: datetime
    article_id: int | None
    status: str
    outcome: str | None
    error: str | None


def _taken(read: _Read, max_attempts: int) -> QueuedItem | Settled:
    """`take_up`'s answer for the row it read (before the count)."""
    if read.status != "new":
        # Redelivered message (acks_late) or a sweep that raced the first run.
        return Settled(item_outcome(read.outcome or read.status))
    fresh = read.article_id is None  # not stored yet: this run is an attempt to store it
    if fresh and read.attempts >= max_attempts:
        # A poison item (one that crashes every run) must not be retried forever.
        error = f"too many attempts; last error: {read.error}" if read.error else None
        return Settled("failed", error or "too many attempts")
    return QueuedItem(
        feed_id=read.feed_id,
        feed_title=read.feed_title,
        url=read.url,
        title=read.title,
        summary=read.summary,
        published=read.published,
        key=read.key,
        attempts=read.attempts + 1 if fresh else read.attempts,
        seen=read.created_at,
        article_id=read.article_id,
    )


def mark_stored(session: Session, item_id: int, article_id: int, now: datetime) -> None:
    """The item's article is stored: it waits for its decision. Queued now, so the
    sweep gives the decision its own time before taking the item up again. Its attempts
    start again at 0: from here on they count decision runs (`start_decision`), so a
    store that took several runs leaves the decision all of its own."""
    session.execute(
        update(Item)
        .where(Item.id == item_id)
        .values(article_id=article_id, queued_at=now, attempts=0, error=None)
        .execution_options(synchronize_session=False)
    )


def finish(
    session: Session,
    item_id: int,
    outcome: ItemOutcome,
    article_id: int | None,
    error: str | None,
) -> None:
    """Record how the item's run ended (`failed` stays failed; every other outcome is done)."""
    session.execute(finish_update(item_id, outcome, article_id, error))


def finish_update(
    item_id: int, outcome: ItemOutcome, article_id: int | None, error: str | None
) -> Update:
    return (
        update(Item)
        .where(Item.id == item_id)
        .values(
            status="failed" if outcome == "failed" else "done",
            outcome=outcome,
            article_id=article_id,
            error=error,
            processed_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
