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

import httpx

from worker.delivery.digest import deliver_digest
from worker.delivery.notify import deliver
from worker.delivery.retry_policy import MAX_ATTEMPTS, next_attempt_delay
from worker.delivery.throttle import MAX_INLINE_WAIT_SECONDS, Circuit, after_failure, after_success
from worker.models import CONSOLE, AlertContent, DeliveryOutcome, DestinationConfig
from worker.observe import metrics
from worker.observe.logs import get_logger
from worker.pipeline.runtime import Runtime
from worker.store import deliveries
from worker.store.engine import transaction

log = get_logger(__name__)


def lease_for(runtime: Runtime) -> timedelta:
    """How long a claimed delivery is ours: longer than one attempt can take (its timeout
    on connect, write and read, plus an inline rate-limit wait), with a margin."""
    return timedelta(seconds=30 + 4 * runtime.settings.delivery_timeout_seconds)


MAX_DIGEST = 200  # alerts in one digest message; more wait for the next one


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    alert_id: str
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    next_attempt_at: datetime | None = None
    postponed: int = 0  # held back by an open circuit or a rate limit; no attempt made


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
        stored = deliveries.alert_content(session, alert_id)
        if stored is None:
            return DeliverySummary(alert_id)
        content = stored
        due = deliveries.due_for_alert(session, alert_id, now)
        # Its follow-up as it stands at this send: the count and links recorded so far.
        update = (
            deliveries.update_content(session, alert_id)
            if any(kind == "update" for _, _, kind in due)
            else None
        )

    destinations = {d.id: d for d in runtime.settings.destinations}
    counts = {"delivered": 0, "failed": 0, "dead": 0, "postponed": 0}
    client = runtime.delivery_client()
    for delivery_id, destination_id, kind in due:
        message = update if kind == "update" and update is not None else content
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
        elif destination.digest_every_minutes and kind == "alert":
            batch, outcome = _send_digest(runtime, client, destination, batch[0], content)
        else:
            with metrics.observe_stage("deliver"):
                outcome = deliver(
                    message,
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
            kind=kind,
            destination_id=destination_id,
            attempt=attempt,
            status=status,
            status_code=outcome.status_code,
            error=outcome.error,
            retry_after=outcome.retry_after_seconds,
        )
    with transaction(runtime.sessions) as session:
        next_at = deliveries.next_attempt_at(session, alert_id)
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
        others = deliveries.due_for_destination(
            session, destination.id, first[0], now, MAX_DIGEST - 1
        )
    batch, contents = [first], [content]
    for other in others:
        claim = _claim(runtime, other)
        if claim is None:
            continue
        attempt, lease = claim
        with transaction(runtime.sessions) as session:
            stored = deliveries.content_of_delivery(session, other)
        if stored is None:
            continue
        batch.append((other, attempt, lease))
        contents.append(stored)
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
        circuit = Circuit(*deliveries.circuit_of(session, destination.id))
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
        attempt = deliveries.claim(session, delivery_id, now, lease, digest_of=digest_of)
    return None if attempt is None else (attempt, lease)


def _postpone(runtime: Runtime, delivery_id: int, lease: datetime, until: datetime) -> None:
    with transaction(runtime.sessions) as session:
        kept = deliveries.postpone(session, delivery_id, lease, until)
    if not kept:
        log.warning("delivery.lease_lost", delivery_id=delivery_id)


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
    advance = _circuit_step(outcome, now)
    failed = not outcome.ok and not outcome.permanent
    with transaction(runtime.sessions) as session:
        status = deliveries.record_attempt(
            session,
            delivery_id,
            lease,
            attempt,
            outcome,
            now=now,
            retry_in=delay,
            last_attempt=attempt >= MAX_ATTEMPTS,
        )
        if status == "lost":
            log.warning("delivery.lease_lost", delivery_id=delivery_id)
            return status
        before, after = deliveries.advance_circuit(
            session, destination_id, advance, now=now, failed=failed, error=outcome.error
        )
    if failed and after[1] and not Circuit(*before).is_open(now):
        log.warning(
            "delivery.circuit_opened",
            destination_id=destination_id,
            failures=after[0],
            until=str(after[1]),
        )
    return status


def _circuit_step(outcome: DeliveryOutcome, now: datetime) -> deliveries.Advance:
    """How the outcome moves its destination's circuit. Only transient failures (timeouts,
    429, 5xx) say a destination is down; a refused payload (4xx) is about the alert, not
    the destination."""
    if outcome.ok:
        return lambda _: _state(after_success())
    if outcome.permanent:
        return lambda kept: kept
    return lambda state: _state(after_failure(Circuit(*state), now))


def _state(circuit: Circuit) -> tuple[int, datetime | None]:
    return circuit.failures, circuit.open_until
