"""Sending a digest: one attempt to deliver a destination's due alerts as one message.

The digest's shape (id, payload, readable summary) is `worker.alerts.digest`; this module
picks the channel by destination kind and records the attempt like any delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from worker.alerts.digest import digest_as_alert, digest_id, digest_payload
from worker.delivery.files import append_jsonl
from worker.delivery.notify import attempt, deliver
from worker.delivery.webhook import post_signed
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig


def deliver_digest(
    alerts: Sequence[AlertContent],
    destination: DestinationConfig,
    *,
    client: httpx.Client,
    timeout: float,
    now: datetime | None = None,
) -> DeliveryOutcome:
    """One attempt to send these alerts to `destination` as one digest; never raises."""
    moment = now or datetime.now(UTC)
    return attempt(
        destination,
        digest_id(alerts),
        lambda: _deliver_digest(alerts, destination, client=client, timeout=timeout, now=moment),
    )


def _deliver_digest(
    alerts: Sequence[AlertContent],
    destination: DestinationConfig,
    *,
    client: httpx.Client,
    timeout: float,
    now: datetime,
) -> DeliveryOutcome:
    if destination.kind == "webhook":
        payload = digest_payload(alerts, now)
        return post_signed(destination, payload["id"], payload, client, timeout=timeout, now=now)
    if destination.kind == "jsonl":
        return append_jsonl(alerts, destination)  # a digest of lines is the lines
    return deliver(
        digest_as_alert(alerts, now), destination, client=client, timeout=timeout, now=now
    )
