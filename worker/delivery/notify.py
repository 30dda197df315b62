"""Alert delivery: one attempt to one destination, and the retry schedule between attempts.

What this module is for: sending a rendered alert (see `worker.alerts.payloads`) to a
console or a JSONL file (`files`), a Slack incoming webhook (`http`), a Standard Webhooks
receiver (`webhook`) or an Apprise URL (`apprise_url`), one module per kind, and
describing how that one attempt went as a `DeliveryOutcome` (ok, transient or permanent,
status code, Retry-After). The wait between attempts is `worker.delivery.retry_policy`; the ledger
of attempts and the dead letter live in the store.

What it must not do:
- raise for a delivery failure: a failing receiver is an expected outcome, returned;
- retry, sleep or loop: one call is one attempt, the task scheduler owns the waiting;
- follow redirects (Standard Webhooks, "Delivery success and failure": a 3xx is a failure
  and the URL should be updated instead);
- put a destination URL's path or query, or a secret, into an error string: Slack webhook
  URLs are bearer secrets, so only `scheme://host` of a URL ever appears.
Destinations are configured by the operator, so there is no SSRF guard here (that is the
feed fetcher's job), but every request has a timeout.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

import httpx

from worker.alerts.payloads import console_text, slack_payload, slack_text_payload
from worker.delivery.apprise_url import to_apprise
from worker.delivery.common import failed, json_bytes, scrub, templated, utc_now
from worker.delivery.files import to_console, to_jsonl
from worker.delivery.http import post
from worker.delivery.webhook import to_webhook
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig
from worker.observe.logs import get_logger

# Connect, read, write and pool timeouts, each. Standard Webhooks ("Request timeouts")
# suggests giving receivers 15-30 s; 10 s keeps a stuck receiver from holding a worker, and
# a receiver slower than that sees a retry it can drop by its webhook-id.
TIMEOUT_SECONDS = 10.0

log = get_logger(__name__)


def deliver(
    alert: AlertContent,
    destination: DestinationConfig,
    *,
    client: httpx.Client,
    now: datetime | None = None,
    timeout: float = TIMEOUT_SECONDS,
    stream: TextIO | None = None,
) -> DeliveryOutcome:
    """Make one delivery attempt of `alert` to `destination`; never raises for a failure.

    `now` is the attempt time (the `webhook-timestamp`, and the reference for an HTTP-date
    Retry-After); `stream` receives console alerts (default: standard output).
    """
    return attempt(
        destination,
        alert.id,
        lambda: _deliver(
            alert, destination, client=client, now=now, timeout=timeout, stream=stream
        ),
    )


def attempt(
    destination: DestinationConfig, subject_id: str, send: Callable[[], DeliveryOutcome]
) -> DeliveryOutcome:
    """`send()`, with an error nobody foresaw (a console that cannot encode a character, a
    library bug) turned into a failed attempt like any other: recorded, retried, and dead
    after the last one, instead of a crashed task whose delivery is re-queued forever."""
    try:
        return send()
    except Exception as exc:
        detail = scrub(str(exc), destination.url) if destination.url else str(exc)
        error = f"unexpected error: {type(exc).__name__}: {detail}"
        # No traceback: its messages could carry the destination's secret URL.
        log.error("delivery.crashed", destination_id=destination.id, id=subject_id, error=error)
        return failed(error, False)


def _deliver(
    alert: AlertContent,
    destination: DestinationConfig,
    *,
    client: httpx.Client,
    now: datetime | None,
    timeout: float,
    stream: TextIO | None,
) -> DeliveryOutcome:
    message = templated(alert, destination)
    match destination.kind:
        case "console":
            text = message if message is not None else console_text(alert)
            return to_console(text, stream if stream is not None else sys.stdout)
        case "jsonl":
            return to_jsonl([(alert, message)], destination)
        case "slack":
            payload = slack_payload(alert) if message is None else slack_text_payload(message)
            body = json_bytes(payload)
            headers = {"content-type": "application/json; charset=utf-8"}
            return post(client, destination, body, headers, timeout=timeout, now=utc_now(now))
        case "webhook":
            return to_webhook(
                alert, destination, client, timeout=timeout, now=utc_now(now), message=message
            )
        case "apprise":
            return to_apprise(alert, destination, message)
        case other:
            return failed(f"destination {destination.id!r} has unknown kind {other!r}", True)
