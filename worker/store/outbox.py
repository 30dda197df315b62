"""The outbox's write side: an alert and its pending deliveries, added in the caller's
transaction (the one that records the article that made them), so they are committed
together or not at all. Sending them is `worker.store.deliveries`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from worker.alerts.stored import alert_to_json
from worker.models import AlertContent
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
