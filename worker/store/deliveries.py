"""The outbox's send side as the delivery use case needs it: which deliveries are due,
leasing one before its send, recording how the attempt went, and each destination's
circuit state.

Each function runs inside the caller's transaction. A delivery is ours only while its
lease holds (`lease_until` equals the lease we took): a function that finds it taken
over returns None or "lost" and changes nothing, and the caller logs it. Rows are locked
in one order (the delivery, then its destination's state) so two workers never wait on
each other in a cycle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session, aliased

from worker.alerts.stored import alert_from_json
from worker.models import AlertContent, DeliveryKind, DeliveryOutcome, delivery_kind
from worker.store.developments import other_sources
from worker.store.engine import insert_missing
from worker.store.schema import Alert, Delivery, DestinationState

# (failures, open until) of a destination's circuit, before -> after an outcome.
CircuitState = tuple[int, datetime | None]
Advance = Callable[[CircuitState], CircuitState]


_original = aliased(Delivery)


def ready_to_send() -> ColumnElement[bool]:
    """An alert's delivery always is; its follow-up once the alert reached that
    destination (an update must not arrive before what it updates)."""
    delivered = exists().where(
        _original.alert_id == Delivery.alert_id,
        _original.destination_id == Delivery.destination_id,
        _original.kind == "alert",
        _original.status == "delivered",
    )
    return (Delivery.kind == "alert") | delivered


def _due(now: datetime) -> ColumnElement[bool]:
    """Waiting for an attempt, due, not leased by anyone, and ready to send."""
    return (
        Delivery.status.in_(("pending", "failed"))
        & (Delivery.next_attempt_at <= now)
        & ((Delivery.lease_until.is_(None)) | (Delivery.lease_until < now))
        & ready_to_send()
    )


def alert_content(session: Session, alert_id: str) -> AlertContent | None:
    """The alert as it was created, or None when there is no such alert."""
    alert = session.get(Alert, alert_id)
    return alert_from_json(alert.content) if alert is not None else None


def due_for_alert(
    session: Session, alert_id: str, now: datetime
) -> list[tuple[int, str, DeliveryKind]]:
    """(delivery id, destination id, kind) of the alert's deliveries that are due now."""
    rows = session.execute(
        select(Delivery.id, Delivery.destination_id, Delivery.kind)
        .where(Delivery.alert_id == alert_id, _due(now))
        .order_by(Delivery.id)
    ).all()
    return [(row[0], row[1], delivery_kind(row[2])) for row in rows]


def update_content(session: Session, alert_id: str) -> AlertContent | None:
    """The alert's follow-up as it stands now: its count and the other outlets' links."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    content = alert_from_json(alert.content)
    sources = other_sources(session, alert.development_id)
    return dataclasses.replace(content, update=True, also_reported=tuple(sources))


def due_for_destination(
    session: Session, destination_id: str, besides: int, now: datetime, limit: int
) -> list[int]:
    """Ids of the destination's other due deliveries, oldest first (a digest's members)."""
    return list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.destination_id == destination_id, Delivery.id != besides, _due(now))
            .order_by(Delivery.created_at, Delivery.id)
            .limit(limit)
        ).all()
    )


def content_of_delivery(session: Session, delivery_id: int) -> AlertContent | None:
    """The alert a delivery carries, or None."""
    delivery = session.get(Delivery, delivery_id)
    alert = session.get(Alert, delivery.alert_id) if delivery else None
    return alert_from_json(alert.content) if alert is not None else None


def claim(
    session: Session,
    delivery_id: int,
    now: datetime,
    lease: datetime,
    *,
    digest_of: str | None = None,
) -> int | None:
    """Lease one due delivery until `lease`: its attempt number, or None.

    `digest_of`: the delivery goes to this digest destination, whose due alerts one worker
    sends as one message. While another worker holds a lease on one of its deliveries, that
    worker is the sender (it gathers the other due deliveries itself), so this one leaves
    the delivery alone. Without this, two workers that each claimed their own alert at a
    slot boundary would each send a digest of one.
    """
    if digest_of is not None:
        # The destination's row serializes claimers (PostgreSQL row lock; SQLite has one
        # writer at a time), so the second one sees the first one's lease. The delivery's
        # row is locked first, in the order `record` locks them.
        session.get(Delivery, delivery_id, with_for_update=True)
        insert_missing(session, DestinationState, destination_id=digest_of, failures=0)
        session.get(DestinationState, digest_of, with_for_update=True)
        sender = session.scalar(
            select(Delivery.id)
            .where(
                Delivery.destination_id == digest_of,
                Delivery.status.in_(("pending", "failed")),  # a leased one is, and indexed
                Delivery.id != delivery_id,
                Delivery.lease_until > now,
            )
            .limit(1)
        )
        if sender is not None:
            # The sender gathers it if it was due in time; if not, the next sweep (not
            # one lease later) gives it another task.
            session.execute(
                update(Delivery).where(Delivery.id == delivery_id).values(queued_until=None)
            )
            return None
    claimed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, _due(now))
        .values(lease_until=lease, queued_until=None)  # its message is consumed
        .returning(Delivery.attempts)
    ).first()
    return None if claimed is None else int(claimed[0]) + 1


def _owned(session: Session, delivery_id: int, lease: datetime) -> Delivery | None:
    """The delivery, if our lease on it still holds (nobody re-claimed it meanwhile)."""
    delivery = session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.lease_until != lease:
        return None
    return delivery


def postpone(session: Session, delivery_id: int, lease: datetime, until: datetime) -> bool:
    """Give the delivery back, due at `until`, without counting an attempt; False when
    the lease was lost."""
    delivery = _owned(session, delivery_id, lease)
    if delivery is None:
        return False
    delivery.lease_until = None
    delivery.next_attempt_at = until
    return True


def record_attempt(
    session: Session,
    delivery_id: int,
    lease: datetime,
    attempt: int,
    outcome: DeliveryOutcome,
    *,
    now: datetime,
    retry_in: float,
    last_attempt: bool,
) -> str:
    """Record one attempt: "delivered", "dead" (refused for good, or `last_attempt`),
    "failed" (due again in `retry_in` seconds), or "lost" when the lease ran out."""
    delivery = _owned(session, delivery_id, lease)
    if delivery is None:
        return "lost"
    delivery.attempts = attempt
    delivery.lease_until = None
    delivery.last_status_code = outcome.status_code
    if outcome.ok:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
    elif outcome.permanent or last_attempt:
        delivery.status, delivery.last_error = "dead", outcome.error
        if delivery.kind == "alert":  # its follow-up would update nothing
            session.execute(
                update(Delivery)
                .where(
                    Delivery.alert_id == delivery.alert_id,
                    Delivery.destination_id == delivery.destination_id,
                    Delivery.kind == "update",
                    Delivery.status.in_(("pending", "failed")),
                )
                .values(status="dead", last_error="the alert it updates was not delivered")
            )
    else:
        delivery.status, delivery.last_error = "failed", outcome.error
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)
    return delivery.status


def circuit_of(session: Session, destination_id: str) -> CircuitState:
    """The destination's circuit as last recorded (closed when never recorded)."""
    state = session.get(DestinationState, destination_id)
    return (state.failures, state.open_until) if state else (0, None)


def advance_circuit(
    session: Session,
    destination_id: str,
    advance: Advance,
    *,
    now: datetime,
    failed: bool,
    error: str | None = None,
) -> tuple[CircuitState, CircuitState]:
    """Move the destination's circuit by `advance` under its row lock (workers record
    outcomes for one destination at once: the lock keeps their failure counts from
    overwriting each other); `failed` with the `error` of a transient failure. Returns
    (before, after)."""
    insert_missing(session, DestinationState, destination_id=destination_id, failures=0)
    state = session.get(
        DestinationState, destination_id, with_for_update=True, populate_existing=True
    )
    assert state is not None  # inserted above, and states are never deleted
    before: CircuitState = (state.failures, state.open_until)
    after = advance(before)
    if failed:
        state.last_failure_at, state.last_error = now, error
    state.failures, state.open_until = after
    return before, after


def next_attempt_at(session: Session, alert_id: str) -> datetime | None:
    """When the alert's next waiting delivery is due, if any is waiting."""
    return session.scalar(
        select(Delivery.next_attempt_at)
        .where(Delivery.alert_id == alert_id, Delivery.status.in_(("pending", "failed")))
        .order_by(Delivery.next_attempt_at)
        .limit(1)
    )
