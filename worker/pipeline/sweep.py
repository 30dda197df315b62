"""Find work whose broker message may be lost, so the periodic tick can enqueue it again.

The database is the source of truth; the broker only carries ids. An item still `new`
long after it was queued, or a delivery due, not leased and not queued in the last
lease, means a message was lost
(worker killed before acking, broker restarted empty): enqueueing again is safe because
every task is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from worker.pipeline.delivery import lease_for
from worker.pipeline.runtime import Runtime
from worker.store.engine import transaction
from worker.store.schema import Delivery, Item

ITEM_STALL_AFTER = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class StalledWork:
    item_ids: tuple[int, ...]
    alert_ids: tuple[str, ...]


def find_stalled_work(
    runtime: Runtime, *, item_stall_after: timedelta = ITEM_STALL_AFTER, limit: int = 500
) -> StalledWork:
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        items = session.scalars(
            select(Item)
            .where(Item.status == "new", Item.queued_at < now - item_stall_after)
            .order_by(Item.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for item in items:
            item.queued_at = now
        deliveries = session.scalars(
            select(Delivery)
            .where(
                Delivery.status.in_(("pending", "failed")),
                Delivery.next_attempt_at <= now,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
                (Delivery.queued_until.is_(None)) | (Delivery.queued_until < now),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for delivery in deliveries:
            delivery.queued_until = now + lease_for(runtime)
        alert_ids = tuple(dict.fromkeys(d.alert_id for d in deliveries))
        return StalledWork(tuple(item.id for item in items), alert_ids)


def note_item_retry(runtime: Runtime, item_id: int, *, error: str, retry_in: float | None) -> None:
    """Record why an item's run failed and, when a retry is scheduled, when it is due.

    The sweep treats an item as stalled ITEM_STALL_AFTER past `queued_at`: moving
    `queued_at` to the retry's due time keeps the sweep from running it early (hitting a
    host that asked us to wait), while a retry message that is lost is still found.
    """
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        item = session.get(Item, item_id)
        if item is None or item.status != "new":
            return
        item.error = error[:2000]
        if retry_in is not None:
            item.queued_at = now + timedelta(seconds=retry_in)
