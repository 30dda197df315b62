"""Standard Webhooks delivery: the alert's JSON, signed, with its id as webhook-id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from worker.alerts.payloads import webhook_payload
from worker.delivery.common import failed, json_text
from worker.delivery.http import post
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig


def to_webhook(
    alert: AlertContent,
    destination: DestinationConfig,
    client: httpx.Client,
    *,
    timeout: float,
    now: datetime,
    message: str | None = None,
) -> DeliveryOutcome:
    payload = webhook_payload(alert)
    if message is not None:
        payload["message"] = message  # an addition: the DESIGN §4 fields stay as they are
    return post_signed(destination, alert.message_id, payload, client, timeout=timeout, now=now)


def post_signed(
    destination: DestinationConfig,
    message_id: str,
    payload: dict[str, Any],
    client: httpx.Client,
    *,
    timeout: float,
    now: datetime,
) -> DeliveryOutcome:
    """POST `payload` as JSON signed per Standard Webhooks, with `message_id` as webhook-id."""
    if not destination.secret:
        return failed(f"webhook destination {destination.id!r} has no signing secret", True)
    # Standard Webhooks signs "{msg_id}.{timestamp}.{payload}": an id with a "." in it
    # would make two different messages sign alike.
    if "." in message_id:
        return failed(f"message id {message_id!r} contains '.', which cannot be signed", True)
    try:
        signer = Webhook(destination.secret)
    except Exception:  # binascii.Error, EmptyWebhookSecretError, RuntimeError, ...
        # Say nothing about the value: it is the secret.
        return failed(
            f"webhook destination {destination.id!r}: the secret is not a Standard Webhooks "
            "secret (whsec_ followed by base64)",
            True,
        )
    body = json_text(payload)
    # Standard Webhooks headers: webhook-id is the event's id, the same on every retry so
    # receivers can drop duplicates; webhook-timestamp is this attempt's time in integer
    # Unix seconds, signed with it so receivers can reject replays.
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign(msg_id=message_id, timestamp=now, data=body),
        "content-type": "application/json",
    }
    # The signed string and the sent bytes must be identical: encode what was signed.
    return post(client, destination, body.encode("utf-8"), headers, timeout=timeout, now=now)
