"""Deliver an alert from the outbox to each of its destinations, at least once.

Each delivery row is claimed with a short lease before sending, so a sweep and a direct
enqueue of the same alert cannot send it twice at the same moment; its outcome moves it
to delivered, failed (with the next attempt time: exponential backoff with jitter,
Retry-After as a floor) or dead after the last attempt. The alert id is the webhook-id, so
a receiver that saw an attempt whose answer we lost can drop the repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from worker.alerts import iso_utc
from worker.logs import get_logger
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig
from worker.notify import MAX_ATTEMPTS, deliver, next_attempt_delay
from worker.pipeline.runtime import Runtime
from worker.store.engine import transaction
from worker.store.schema import Alert, Delivery

log = get_logger(__name__)

LEASE = timedelta(minutes=2)  # longer than one attempt can take (10 s timeouts)
CONSOLE = DestinationConfig(id="console", kind="console")


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    alert_id: str
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    next_attempt_at: datetime | None = None


def alert_to_json(alert: AlertContent) -> dict[str, Any]:
    return {
        "id": alert.id,
        "story_id": alert.story_id,
        "story_title": alert.story_title,
        "article_url": alert.article_url,
        "article_title": alert.article_title,
        "source": alert.source,
        "published": iso_utc(alert.published),
        "new_facts": list(alert.new_facts),
        "score": alert.score,
        "reasons": list(alert.reasons),
        "detected_at": iso_utc(alert.detected_at),
        "also_reported_by": alert.also_reported_by,
    }


def alert_from_json(data: dict[str, Any]) -> AlertContent:
    def moment(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

    detected = moment(data.get("detected_at"))
    assert detected is not None
    return AlertContent(
        id=data["id"],
        story_id=data["story_id"],
        story_title=data["story_title"],
        article_url=data.get("article_url"),
        article_title=data.get("article_title"),
        source=data.get("source"),
        published=moment(data.get("published")),
        new_facts=tuple(data.get("new_facts", ())),
        score=float(data.get("score", 0.0)),
        reasons=tuple(data.get("reasons", ())),
        detected_at=detected,
        also_reported_by=int(data.get("also_reported_by", 0)),
    )


def deliver_alert(runtime: Runtime, alert_id: str) -> DeliverySummary:
    """Attempt every due delivery of one alert; returns counts and the next attempt time."""
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return DeliverySummary(alert_id)
        content = alert_from_json(alert.content)
        claimed = session.scalars(
            select(Delivery)
            .where(
                Delivery.alert_id == alert_id,
                Delivery.status.in_(("pending", "failed")),
                Delivery.next_attempt_at <= now,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
            )
            .with_for_update(skip_locked=True)
        ).all()
        for delivery in claimed:
            delivery.lease_until = now + LEASE
            delivery.attempts += 1
        work = [(d.id, d.destination_id, d.attempts) for d in claimed]

    destinations = {d.id: d for d in runtime.settings.destinations} or {CONSOLE.id: CONSOLE}
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    with runtime.delivery_client() as client:
        for delivery_id, destination_id, attempt in work:
            destination = destinations.get(destination_id)
            if destination is None:
                outcome = DeliveryOutcome(
                    ok=False, permanent=True, error="destination is no longer configured"
                )
            else:
                outcome = deliver(content, destination, client=client)
            status = _record(runtime, delivery_id, attempt, outcome)
            counts[status if status != "pending" else "failed"] += 1
            event = "delivery.succeeded" if outcome.ok else "delivery.failed"
            (log.info if outcome.ok else log.warning)(
                event,
                alert_id=alert_id,
                destination_id=destination_id,
                attempt=attempt,
                status=status,
                status_code=outcome.status_code,
                error=outcome.error,
                retry_after=outcome.retry_after_seconds,
            )
    with transaction(runtime.sessions) as session:
        next_at = session.scalar(
            select(Delivery.next_attempt_at)
            .where(Delivery.alert_id == alert_id, Delivery.status.in_(("pending", "failed")))
            .order_by(Delivery.next_attempt_at)
            .limit(1)
        )
    return DeliverySummary(alert_id, counts["delivered"], counts["failed"], counts["dead"], next_at)


def _record(runtime: Runtime, delivery_id: int, attempt: int, outcome: DeliveryOutcome) -> str:
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            return "dead"
        delivery.lease_until = None
        delivery.last_status_code = outcome.status_code
        if outcome.ok:
            delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
        elif outcome.permanent or attempt >= MAX_ATTEMPTS:
            delivery.status, delivery.last_error = "dead", outcome.error
        else:
            delay = next_attempt_delay(
                attempt,
                retry_after=outcome.retry_after_seconds,
                base=runtime.settings.delivery_retry_seconds,
            )
            delivery.status, delivery.last_error = "failed", outcome.error
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        return delivery.status
