"""The outbox as an operator sees it: alerts with their deliveries, and the one operator
action on it, moving failed or dead deliveries back to pending (`storywatch alerts list`,
`storywatch alerts retry`). Reads take no write lock (see `worker.store.ops`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from worker.models import DELIVERY_STATUSES
from worker.store.ops import truncate_error
from worker.store.schema import Alert, Delivery, DevelopmentSource


@dataclass(frozen=True, slots=True)
class DeliveryState:
    destination_id: str
    status: str
    attempts: int
    last_error: str | None
    last_status_code: int | None
    next_attempt_at: datetime
    delivered_at: datetime | None
    kind: str = "alert"  # or "update": the alert's follow-up


@dataclass(frozen=True, slots=True)
class AlertSummary:
    id: str
    story_id: str
    story_title: str | None
    article_title: str | None
    article_url: str | None
    created_at: datetime
    deliveries: tuple[DeliveryState, ...]
    also_reported_by: tuple[tuple[str | None, str | None], ...] = ()  # (source, url) each


@dataclass(frozen=True, slots=True)
class RetryResult:
    alert_ids: tuple[str, ...]  # alerts with at least one delivery moved back to pending
    deliveries: int


def list_alerts(
    session: Session, *, status: str | None = None, limit: int = 20
) -> tuple[AlertSummary, ...]:
    """The newest alerts first; with `status`, only alerts with a delivery in that status."""
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id).limit(limit)
    if status is not None:
        if status not in DELIVERY_STATUSES:
            raise ValueError(f"unknown delivery status {status!r}")
        query = query.where(
            Alert.id.in_(select(Delivery.alert_id).where(Delivery.status == status))
        )
    alerts = session.scalars(query).all()
    deliveries: dict[str, list[DeliveryState]] = {alert.id: [] for alert in alerts}
    rows = session.scalars(
        select(Delivery)
        .where(Delivery.alert_id.in_(list(deliveries)))
        .order_by(Delivery.destination_id, Delivery.kind)
    )
    for row in rows:
        deliveries[row.alert_id].append(
            DeliveryState(
                destination_id=row.destination_id,
                status=row.status,
                attempts=row.attempts,
                last_error=truncate_error(row.last_error),
                last_status_code=row.last_status_code,
                next_attempt_at=row.next_attempt_at,
                delivered_at=row.delivered_at,
                kind=row.kind,
            )
        )
    reports: dict[int, list[tuple[str | None, str | None]]] = {}
    for development_id, source, url in session.execute(
        select(DevelopmentSource.development_id, DevelopmentSource.source, DevelopmentSource.url)
        .where(DevelopmentSource.development_id.in_([a.development_id for a in alerts]))
        .order_by(DevelopmentSource.id)
    ):
        reports.setdefault(development_id, []).append((source, url))
    return tuple(
        AlertSummary(
            id=alert.id,
            story_id=alert.story_id,
            story_title=alert.content.get("story_title"),
            article_title=alert.content.get("article_title"),
            article_url=alert.content.get("article_url"),
            created_at=alert.created_at,
            deliveries=tuple(deliveries[alert.id]),
            also_reported_by=tuple(reports.get(alert.development_id, ())),
        )
        for alert in alerts
    )


def alert_exists(session: Session, alert_id: str) -> bool:
    return session.get(Alert, alert_id) is not None


def retry_deliveries(session: Session, now: datetime, *, alert_id: str | None) -> RetryResult:
    """Move deliveries back to pending, due now, with their attempts reset.

    With `alert_id`: that alert's dead and failed deliveries. Without: every dead delivery.
    A delivery whose lease is live is mid-attempt in some worker and is left alone: its
    outcome is about to be recorded, and resetting it now would race that write.
    The last error stays, so `alerts list` still explains why it had died.
    """
    statuses = ("dead", "failed") if alert_id is not None else ("dead",)
    conditions: list[ColumnElement[bool]] = [
        Delivery.status.in_(statuses),
        (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
    ]
    if alert_id is not None:
        conditions.append(Delivery.alert_id == alert_id)
    rows = session.execute(select(Delivery.id, Delivery.alert_id).where(*conditions)).all()
    if not rows:
        return RetryResult((), 0)
    session.execute(
        update(Delivery)
        # The conditions again: a worker may have claimed one since the select above.
        .where(Delivery.id.in_([row.id for row in rows]), *conditions)
        .values(
            status="pending",
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            # Not believed queued: if our enqueue fails, the sweep sends it on its next tick.
            queued_until=None,
        )
    )
    return RetryResult(tuple(sorted({row.alert_id for row in rows})), len(rows))
