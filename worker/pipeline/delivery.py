"""Deliver an alert from the outbox to each of its destinations, at least once.

Each delivery row is claimed with a short lease before sending, so a sweep and a direct
enqueue of the same alert cannot send it twice at the same moment; its outcome moves it
to delivered, failed (with the next attempt time: exponential backoff with jitter,
Retry-After as a floor) or dead after the last attempt. The alert id is the webhook-id, so
a receiver that saw an attempt whose answer we lost can drop the repeat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from worker.alerts.payloads import iso_utc
from worker.delivery.digest import deliver_digest
from worker.delivery.notify import deliver
from worker.delivery.retry_policy import MAX_ATTEMPTS, next_attempt_delay
from worker.delivery.throttle import MAX_INLINE_WAIT_SECONDS, Circuit, after_failure, after_success
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig
from worker.observe import metrics
from worker.observe.logs import get_logger
from worker.pipeline.runtime import Runtime
from worker.store.engine import insert_missing, transaction
from worker.store.schema import Alert, Delivery, DestinationState

log = get_logger(__name__)


def lease_for(runtime: Runtime) -> timedelta:
    """How long a claimed delivery is ours: longer than one attempt can take (its timeout
    on connect, write and read, plus an inline rate-limit wait), with a margin."""
    return timedelta(seconds=30 + 4 * runtime.settings.delivery_timeout_seconds)


CONSOLE = DestinationConfig(id="console", kind="console")
MAX_DIGEST = 200  # alerts in one digest message; more wait for the next one


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    alert_id: str
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    next_attempt_at: datetime | None = None
    postponed: int = 0  # held back by an open circuit or a rate limit; no attempt made


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
    """Attempt every due delivery of one alert; returns counts and the next attempt time.

    Per delivery, in order:
    1. its destination's circuit is open: postpone to when it closes (no attempt counted);
    2. its destination's rate limit has no token within MAX_INLINE_WAIT_SECONDS: postpone
       to when one is due (no attempt counted); a shorter wait is slept here;
    3. otherwise send once and record delivered, failed (next attempt after backoff) or dead.
    """
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return DeliverySummary(alert_id)
        content = alert_from_json(alert.content)
        due = session.execute(
            select(Delivery.id, Delivery.destination_id).where(
                Delivery.alert_id == alert_id,
                Delivery.status.in_(("pending", "failed")),
                Delivery.next_attempt_at <= now,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
            )
        ).all()

    destinations = {d.id: d for d in runtime.settings.destinations}
    counts = {"delivered": 0, "failed": 0, "dead": 0, "postponed": 0}
    with runtime.delivery_client() as client:
        for delivery_id, destination_id in due:
            # "console" always means the console, configured or not: stories.toml may
            # route a story there by name.
            destination = destinations.get(destination_id) or (
                CONSOLE if destination_id == CONSOLE.id else None
            )
            digest = destination is not None and bool(destination.digest_every_minutes)
            # Claimed one at a time, just before its send: a lease taken for all of an
            # alert's deliveries at once could run out while earlier ones are being sent.
            claim = _claim(runtime, delivery_id, digest_of=destination_id if digest else None)
            if claim is None:
                continue  # another worker took it (or is sending its digest), or not due
            attempt, lease = claim
            postpone_until = _hold_back(runtime, destination) if destination else None
            if postpone_until is not None:
                _postpone(runtime, delivery_id, lease, postpone_until)
                counts["postponed"] += 1
                metrics.count_delivery(destination_id, "postponed")
                continue
            batch = [(delivery_id, attempt, lease)]
            if destination is None:
                outcome = DeliveryOutcome(
                    ok=False, permanent=True, error="destination is no longer configured"
                )
            elif destination.digest_every_minutes:
                batch, outcome = _send_digest(runtime, client, destination, batch[0], content)
            else:
                with metrics.observe_stage("deliver"):
                    outcome = deliver(
                        content,
                        destination,
                        client=client,
                        timeout=runtime.settings.delivery_timeout_seconds,
                    )
            # One retry time for the whole batch, so a failed digest is retried as one.
            delay = next_attempt_delay(
                max(attempt for _, attempt, _ in batch),
                retry_after=outcome.retry_after_seconds,
                base=runtime.settings.delivery_retry_seconds,
            )
            for member_id, member_attempt, member_lease in batch:
                status = _record(
                    runtime, member_id, destination_id, member_attempt, member_lease, outcome, delay
                )
                if status == "lost":
                    continue  # the lease ran out mid-send; the new owner records its attempt
                metrics.count_delivery(destination_id, status)
                if member_id == delivery_id:
                    counts[status] += 1
            (log.info if outcome.ok else log.warning)(
                "delivery.succeeded" if outcome.ok else "delivery.failed",
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
    return DeliverySummary(
        alert_id,
        counts["delivered"],
        counts["failed"],
        counts["dead"],
        next_at,
        counts["postponed"],
    )


def _send_digest(
    runtime: Runtime,
    client: httpx.Client,
    destination: DestinationConfig,
    first: tuple[int, int, datetime],
    content: AlertContent,
) -> tuple[list[tuple[int, int, datetime]], DeliveryOutcome]:
    """Send every due delivery of a digest destination as one message (this alert's first)."""
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        others = session.scalars(
            select(Delivery.id)
            .where(
                Delivery.destination_id == destination.id,
                Delivery.id != first[0],
                Delivery.status.in_(("pending", "failed")),
                Delivery.next_attempt_at <= now,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
            )
            .order_by(Delivery.created_at, Delivery.id)
            .limit(MAX_DIGEST - 1)
        ).all()
    batch, contents = [first], [content]
    for other in others:
        claim = _claim(runtime, other)
        if claim is None:
            continue
        attempt, lease = claim
        with transaction(runtime.sessions) as session:
            delivery = session.get(Delivery, other)
            alert = session.get(Alert, delivery.alert_id) if delivery else None
        if alert is None:
            continue
        batch.append((other, attempt, lease))
        contents.append(alert_from_json(alert.content))
    with metrics.observe_stage("deliver"):
        outcome = deliver_digest(
            contents, destination, client=client, timeout=runtime.settings.delivery_timeout_seconds
        )
    log.info("delivery.digest", destination_id=destination.id, alerts=len(contents), ok=outcome.ok)
    return batch, outcome


def _hold_back(runtime: Runtime, destination: DestinationConfig) -> datetime | None:
    """When the delivery must wait (open circuit, no rate-limit token soon), until when."""
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        state = session.get(DestinationState, destination.id)
        circuit = Circuit(state.failures, state.open_until) if state else Circuit()
    if circuit.is_open(now):
        assert circuit.open_until is not None
        log.info(
            "delivery.circuit_open", destination_id=destination.id, until=str(circuit.open_until)
        )
        return circuit.open_until
    if destination.max_per_second:
        wait = runtime.limiter.reserve(destination.id, destination.max_per_second)
        if wait > MAX_INLINE_WAIT_SECONDS:
            return now + timedelta(seconds=wait)
        if wait > 0:
            time.sleep(wait)
            if runtime.limiter.reserve(destination.id, destination.max_per_second) > 0:
                return now + timedelta(seconds=wait)
    return None


def _claim(
    runtime: Runtime, delivery_id: int, *, digest_of: str | None = None
) -> tuple[int, datetime] | None:
    """Lease one due delivery: (attempt number, lease end), or None.

    `digest_of`: the delivery goes to this digest destination, whose due alerts one worker
    sends as one message. While another worker holds a lease on one of its deliveries, that
    worker is the sender (it gathers the other due deliveries itself), so this one leaves
    the delivery alone. Without this, two workers that each claimed their own alert at a
    slot boundary would each send a digest of one.
    """
    now = runtime.clock()
    lease = now + lease_for(runtime)
    with transaction(runtime.sessions) as session:
        if digest_of is not None:
            # The destination's row serializes claimers (PostgreSQL row lock; SQLite has
            # one writer at a time), so the second one sees the first one's lease. The
            # delivery's row is locked first, in the order `_record` locks them.
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
                # The sender gathers it if it was due in time; if not, the next sweep
                # (not one lease later) gives it another task.
                session.execute(
                    update(Delivery).where(Delivery.id == delivery_id).values(queued_until=None)
                )
                return None
        claimed = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status.in_(("pending", "failed")),
                Delivery.next_attempt_at <= now,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
            )
            .values(lease_until=lease, queued_until=None)  # its message is consumed
            .returning(Delivery.attempts)
        ).first()
    if claimed is None:
        return None
    return claimed[0] + 1, lease


def _owned(session: Session, delivery_id: int, lease: datetime) -> Delivery | None:
    """The delivery, if our lease on it still holds (nobody re-claimed it meanwhile)."""
    delivery = session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.lease_until != lease:
        log.warning("delivery.lease_lost", delivery_id=delivery_id)
        return None
    return delivery


def _postpone(runtime: Runtime, delivery_id: int, lease: datetime, until: datetime) -> None:
    with transaction(runtime.sessions) as session:
        delivery = _owned(session, delivery_id, lease)
        if delivery is not None:
            delivery.lease_until = None
            delivery.next_attempt_at = until


def _record(
    runtime: Runtime,
    delivery_id: int,
    destination_id: str,
    attempt: int,
    lease: datetime,
    outcome: DeliveryOutcome,
    delay: float,
) -> str:
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        delivery = _owned(session, delivery_id, lease)
        if delivery is None:
            return "lost"
        delivery.attempts = attempt
        delivery.lease_until = None
        delivery.last_status_code = outcome.status_code
        if outcome.ok:
            delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
        elif outcome.permanent or attempt >= MAX_ATTEMPTS:
            delivery.status, delivery.last_error = "dead", outcome.error
        else:
            delivery.status, delivery.last_error = "failed", outcome.error
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        _update_circuit(session, destination_id, outcome, now)
        return delivery.status


def _update_circuit(
    session: Session, destination_id: str, outcome: DeliveryOutcome, now: datetime
) -> None:
    """Only transient failures (timeouts, 429, 5xx) say a destination is down; a refused
    payload (4xx) is about the alert, not the destination."""
    # Workers record outcomes for the same destination at once; the lock keeps their
    # failure counts from overwriting each other.
    insert_missing(session, DestinationState, destination_id=destination_id, failures=0)
    state = session.get(
        DestinationState, destination_id, with_for_update=True, populate_existing=True
    )
    assert state is not None  # inserted above, and states are never deleted
    if outcome.ok:
        circuit = after_success()
    elif outcome.permanent:
        return
    else:
        circuit = after_failure(Circuit(state.failures, state.open_until), now)
        state.last_failure_at, state.last_error = now, outcome.error
        if circuit.open_until and not Circuit(state.failures, state.open_until).is_open(now):
            log.warning(
                "delivery.circuit_opened",
                destination_id=destination_id,
                failures=circuit.failures,
                until=str(circuit.open_until),
            )
    state.failures, state.open_until = circuit.failures, circuit.open_until
