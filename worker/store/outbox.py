"""The outbox's write side: an alert and its pending deliveries, added in the caller's
transaction (the one that records the article that made them), so they are committed
together or not at all; and an alert's one follow-up, when later outlets report it.
Sending them is `worker.store.deliveries`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.alerts.stored import alert_to_json
from worker.models import AlertContent
from worker.store.engine import insert_missing
from worker.store.schema import Alert, Delivery


def add_alert(
    session: Session, content: AlertContent, *, development_id: int, created_at: datetime
) -> None:
    session.add(
        Alert(
            id=content.id,
            development_id=development_id,
            story_id=content.story_id,
            content=alert_to_json(content),
            created_at=created_at,
        )
    )
    session.flush()


def add_delivery(session: Session, alert_id: str, destination_id: str, due: datetime) -> None:
    """One pending delivery of the alert to the destination, first due at `due`."""
    session.add(
        Delivery(
            alert_id=alert_id, destination_id=destination_id, status="pending", next_attempt_at=due
        )
    )


def schedule_updates(
    session: Session, development_id: int, destinations: Collection[str], due: datetime
) -> str | None:
    """The one follow-up of the development's alert to each of `destinations` it went to
    (and did not fail for good), first due at `due`; a follow-up already scheduled stays
    as it is: recipients hear of later reports once. Returns the alert's id, if any."""
    alert_id = session.scalar(select(Alert.id).where(Alert.development_id == development_id))
    if alert_id is None:
        return None
    sent_to = session.scalars(
        select(Delivery.destination_id).where(
            Delivery.alert_id == alert_id, Delivery.kind == "alert", Delivery.status != "dead"
        )
    )
    for destination_id in sent_to.all():
        if destination_id in destinations:
            insert_missing(
                session,
                Delivery,
                alert_id=alert_id,
                destination_id=destination_id,
                kind="update",
                status="pending",
                attempts=0,
                next_attempt_at=due,
            )
    return alert_id
