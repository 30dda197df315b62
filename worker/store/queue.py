"""Work the broker may have lost, found in the tables: items still `new` long after they
were queued, deliveries due that nobody leased or queued lately; and an item's failed
run, recorded so the sweep does not take it up before its retry is due.

Each function runs inside the caller's transaction; rows are claimed with
`FOR UPDATE SKIP LOCKED`, so two sweeps never hand out the same work.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.store.deliveries import ready_to_send
from worker.store.schema import Delivery, Item


def claim_stalled_items(
    session: Session, now: datetime, stall_after: timedelta, limit: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Items still `new` `stall_after` past their queueing, queued again now: (those to
    run from the start, those stored already that wait for their decision)."""
    items = session.scalars(
        select(Item)
        .where(Item.status == "new", Item.queued_at < now - stall_after)
        .order_by(Item.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for item in items:
        item.queued_at = now
    return (
        tuple(item.id for item in items if item.article_id is None),
        tuple(item.id for item in items if item.article_id is not None),
    )


def claim_due_deliveries(
    session: Session, now: datetime, queued_for: timedelta, limit: int
) -> tuple[str, ...]:
    """Alert ids of deliveries due, not leased and not queued within `queued_for`; their
    deliveries are marked queued for that long."""
    deliveries = session.scalars(
        select(Delivery)
        .where(
            Delivery.status.in_(("pending", "failed")),
            Delivery.next_attempt_at <= now,
            (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
            (Delivery.queued_until.is_(None)) | (Delivery.queued_until < now),
            ready_to_send(),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for delivery in deliveries:
        delivery.queued_until = now + queued_for
    return tuple(dict.fromkeys(d.alert_id for d in deliveries))


def note_item_error(session: Session, item_id: int, error: str, due: datetime | None) -> None:
    """Keep why an item's run failed; with `due`, the sweep leaves it alone until then.
    Counts nothing: a store run counts when it starts (`items.take_up`), a decision run
    too (`decisions.start_decision`)."""
    item = session.get(Item, item_id)
    if item is None or item.status != "new":
        return
    item.error = error[:2000]
    if due is not None:
        item.queued_at = due
