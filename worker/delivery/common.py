"""What every delivery channel shares: the outcome of a failure, the operator's template,
the compact JSON that gets signed, and keeping destination secrets out of messages.

Destination URLs are secrets (a Slack webhook URL is a bearer token), so an error string
only ever names `scheme://host` of one (`redact_url`), and `scrub` removes a URL and each
of its secret-bearing parts from a library's message.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from worker.alerts.templates import render as render_template
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig
from worker.observe.logs import get_logger
from worker.utc import as_utc

_JSON_SEPARATORS = (",", ":")  # compact, and exactly the bytes that get signed

log = get_logger("worker.delivery.notify")


def redact_url(url: str) -> str:
    """`scheme://host[:port]/…`: what an error string may say about a destination URL.

    Slack incoming-webhook URLs carry their token in the path, other receivers in the
    query or userinfo; none of them may reach logs or the delivery ledger.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return f"{parts.scheme or '?'}://{host}{port}/…"


def templated(alert: AlertContent, destination: DestinationConfig) -> str | None:
    """The destination's own message text, or None for the built-in format.

    Templates were checked at start; one that still fails on a real alert (a value the
    sample lacked), or renders nothing for it (a loop over facts it has none of), falls
    back to the built-in format rather than lose the alert or send an empty message.
    """
    if destination.template is None or alert.update:
        return None  # a follow-up is always in the built-in format: templates write alerts
    try:
        text = render_template(destination.template, alert, slack=destination.kind == "slack")
    except Exception as exc:  # any template failure means "use the default"
        error = str(exc)[:300]
    else:
        if text:
            return text
        error = "the template rendered an empty message"
    log.warning(
        "delivery.template_failed", destination_id=destination.id, alert_id=alert.id, error=error
    )
    return None


def scrub(text: str, url: str) -> str:
    """Remove the URL and each of its secret-bearing parts from a message."""
    parts = urlsplit(url)
    secrets = [
        url,
        parts.path if len(parts.path) > 1 else "",
        parts.query,
        parts.password or "",
        parts.username or "",  # a token passed as userinfo
    ]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


def json_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=_JSON_SEPARATORS)


def json_bytes(payload: dict[str, Any]) -> bytes:
    return json_text(payload).encode("utf-8")


def failed(error: str, permanent: bool) -> DeliveryOutcome:
    return DeliveryOutcome(ok=False, permanent=permanent, error=error)


def utc_now(now: datetime | None) -> datetime:
    # standardwebhooks' sign() replaces tzinfo with UTC rather than converting, so the
    # attempt time must already be in UTC for the signature to match the header.
    if now is None:
        return datetime.now(UTC)
    return as_utc(now)
