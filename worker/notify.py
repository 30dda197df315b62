"""Alert delivery: one attempt to one destination, and the retry schedule between attempts.

What this module is for: sending a rendered alert (see `alerts.py`) to a console, a JSONL
file, a Slack incoming webhook, a Standard Webhooks receiver or an Apprise URL, and
describing how that one attempt went as a `DeliveryOutcome` (ok, transient or permanent,
status code, Retry-After). The wait between attempts is `worker.retry_policy`; the ledger
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

import contextlib
import fcntl
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from worker.alerts import (
    console_text,
    jsonl_record,
    slack_payload,
    slack_text_payload,
    webhook_payload,
)
from worker.logs import get_logger
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig

# One reading of RFC 9110 Retry-After (delay-seconds or HTTP-date, capped) for the project.
from worker.net import DEFAULT_USER_AGENT, parse_retry_after
from worker.templates import render as render_template
from worker.utc import as_utc

# Connect, read, write and pool timeouts, each. Standard Webhooks ("Request timeouts")
# suggests giving receivers 15-30 s; 10 s keeps a stuck receiver from holding a worker, and
# a receiver slower than that sees a retry it can drop by its webhook-id.
TIMEOUT_SECONDS = 10.0
_ERROR_EXCERPT_CHARS = 200  # of a failing receiver's body, to explain the failure
_JSON_SEPARATORS = (",", ":")  # compact, and exactly the bytes that get signed

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
        detail = _scrub(str(exc), destination.url) if destination.url else str(exc)
        error = f"unexpected error: {type(exc).__name__}: {detail}"
        # No traceback: its messages could carry the destination's secret URL.
        log.error("delivery.crashed", destination_id=destination.id, id=subject_id, error=error)
        return _failed(error, False)


def _deliver(
    alert: AlertContent,
    destination: DestinationConfig,
    *,
    client: httpx.Client,
    now: datetime | None,
    timeout: float,
    stream: TextIO | None,
) -> DeliveryOutcome:
    message = _templated(alert, destination)
    match destination.kind:
        case "console":
            text = message if message is not None else console_text(alert)
            return _to_console(text, stream if stream is not None else sys.stdout)
        case "jsonl":
            return _to_jsonl([(alert, message)], destination)
        case "slack":
            payload = slack_payload(alert) if message is None else slack_text_payload(message)
            body = _json_bytes(payload)
            headers = {"content-type": "application/json; charset=utf-8"}
            return _post(client, destination, body, headers, timeout=timeout, now=_utc(now))
        case "webhook":
            return _to_webhook(
                alert, destination, client, timeout=timeout, now=_utc(now), message=message
            )
        case "apprise":
            return _to_apprise(alert, destination, message)
        case other:
            return _failed(f"destination {destination.id!r} has unknown kind {other!r}", True)


def classify_status(status_code: int) -> DeliveryOutcome:
    """The outcome of an HTTP answer, before Retry-After and error text are added.

    1. 2xx: delivered.
    2. 408, 429 and 5xx: transient; the receiver is slow, throttling or down.
    3. 3xx: permanent; redirects are not followed, the configured URL needs updating.
    4. Other 4xx, including 410 Gone (the receiver wants no more): permanent.
    5. Anything else (a stray 1xx): transient, since a later attempt may do better.
    """
    if 200 <= status_code < 300:
        return DeliveryOutcome(ok=True, status_code=status_code)
    transient = status_code in (408, 429) or 500 <= status_code < 600
    permanent = not transient and 300 <= status_code < 500
    return DeliveryOutcome(ok=False, permanent=permanent, status_code=status_code)


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


# ---------------------------------------------------------------------------------------
# Kinds of destination


def _templated(alert: AlertContent, destination: DestinationConfig) -> str | None:
    """The destination's own message text, or None for the built-in format.

    Templates were checked at start; one that still fails on a real alert (a value the
    sample lacked), or renders nothing for it (a loop over facts it has none of), falls
    back to the built-in format rather than lose the alert or send an empty message.
    """
    if destination.template is None:
        return None
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


def _to_console(text: str, stream: TextIO) -> DeliveryOutcome:
    try:
        stream.write(text + "\n")
        stream.flush()
    except OSError as exc:  # a closed pipe or a full disk behind a redirect
        return _failed(f"could not write to the console: {exc}", False)
    return DeliveryOutcome(ok=True)


def append_jsonl(alerts: Sequence[AlertContent], destination: DestinationConfig) -> DeliveryOutcome:
    """One line per alert, appended in one write: a digest that fails part-way and is
    retried does not write its first lines twice."""
    return _to_jsonl([(alert, _templated(alert, destination)) for alert in alerts], destination)


def _to_jsonl(
    messages: Sequence[tuple[AlertContent, str | None]], destination: DestinationConfig
) -> DeliveryOutcome:
    if not destination.path:
        return _failed(f"jsonl destination {destination.id!r} has no path", True)
    path = Path(destination.path)
    lines = []
    for alert, message in messages:
        record = jsonl_record(alert)
        if message is not None:
            record["message"] = message
        lines.append(_json_bytes(record) + b"\n")
    data = b"".join(lines)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # The lock keeps workers' lines whole (a short write is finished before anyone
            # else appends) and lets a failed append be undone: a retried delivery must not
            # find half of its lines, or half a line, already written.
            fcntl.flock(fd, fcntl.LOCK_EX)
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)  # an alert reported as delivered survives a power cut
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)  # and with it the lock
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        return _failed(f"cannot append to {path}: {exc.strerror or exc}", True)
    except OSError as exc:  # e.g. a full disk: an operator may free space
        return _failed(f"could not append to {path}: {exc.strerror or exc}", False)
    return DeliveryOutcome(ok=True)


def _to_webhook(
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
    return post_signed(destination, alert.id, payload, client, timeout=timeout, now=now)


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
        return _failed(f"webhook destination {destination.id!r} has no signing secret", True)
    # Standard Webhooks signs "{msg_id}.{timestamp}.{payload}": an id with a "." in it
    # would make two different messages sign alike.
    if "." in message_id:
        return _failed(f"message id {message_id!r} contains '.', which cannot be signed", True)
    try:
        signer = Webhook(destination.secret)
    except Exception:  # binascii.Error, EmptyWebhookSecretError, RuntimeError, ...
        # Say nothing about the value: it is the secret.
        return _failed(
            f"webhook destination {destination.id!r}: the secret is not a Standard Webhooks "
            "secret (whsec_ followed by base64)",
            True,
        )
    body = json.dumps(payload, ensure_ascii=False, separators=_JSON_SEPARATORS)
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
    return _post(client, destination, body.encode("utf-8"), headers, timeout=timeout, now=now)


def _to_apprise(
    alert: AlertContent, destination: DestinationConfig, message: str | None
) -> DeliveryOutcome:
    """Apprise (optional extra `storywatch[apprise]`) speaks to ~100 services; it does its
    own HTTP with its own timeouts (4 s connect and read by default, `cto`/`rto` in the
    URL), and reports success or failure only, so a failure is always retried."""
    if not destination.url:
        return _failed(f"apprise destination {destination.id!r} has no url", True)
    try:
        apprise: Any = importlib.import_module("apprise")
    except ImportError:
        return _failed("apprise is not installed: pip install 'storywatch[apprise]'", True)
    notifier = apprise.Apprise()
    where = redact_url(destination.url)
    if not notifier.add(destination.url):
        return _failed(f"apprise does not understand the URL {where}", True)
    result = notifier.notify(
        title=f"New development: {alert.story_title}",
        body=message if message is not None else console_text(alert),
    )
    ok = bool(result)  # a bool before Apprise 2, an AppriseResult (truthy on success) after
    close = getattr(result, "close", None)
    if callable(close):
        close()
    if ok:
        return DeliveryOutcome(ok=True)
    return _failed(f"apprise could not deliver to {where}", False)


# ---------------------------------------------------------------------------------------
# HTTP


# Transport failures to outcomes, first match wins (STYLE habit 7: one table, no ladder).
_EXCEPTION_OUTCOMES: tuple[tuple[type[Exception], bool, str], ...] = (
    (httpx.InvalidURL, True, "invalid URL"),
    (httpx.UnsupportedProtocol, True, "unsupported URL scheme"),
    (httpx.LocalProtocolError, True, "request could not be built"),
    (httpx.TimeoutException, False, "timed out"),
    (httpx.TransportError, False, "connection failed"),
    (httpx.HTTPError, False, "HTTP error"),
)


def _post(
    client: httpx.Client,
    destination: DestinationConfig,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    now: datetime,
) -> DeliveryOutcome:
    url = destination.url
    if not url:
        return _failed(f"{destination.kind} destination {destination.id!r} has no url", True)
    where = redact_url(url)
    headers = {**headers, "user-agent": DEFAULT_USER_AGENT}
    try:
        with client.stream(
            "POST",
            url,
            content=body,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
        ) as response:
            outcome = classify_status(response.status_code)
            if outcome.ok:
                return outcome
            excerpt = _read_excerpt(response, timeout)
            retry_after = None
            if response.status_code in (429, 503):
                retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        permanent, label = next((p, lbl) for t, p, lbl in _EXCEPTION_OUTCOMES if isinstance(exc, t))
        detail = _scrub(str(exc), url)
        message = f"{label} posting to {where} ({type(exc).__name__}" + (
            f": {detail})" if detail else ")"
        )
        return _failed(message, permanent)
    reason = response.reason_phrase or "error"
    message = f"HTTP {response.status_code} {reason} from {where}"
    if excerpt:
        message += f": {_scrub(excerpt, url)}"
    return DeliveryOutcome(
        ok=False,
        permanent=outcome.permanent,
        retry_after_seconds=retry_after,
        status_code=response.status_code,
        error=message,
    )


def _read_excerpt(response: httpx.Response, timeout: float) -> str:
    """The start of an error body, on one line. Read as a stream, for at most `timeout`
    seconds in all, so neither an endless body nor one dripping a byte at a time (each
    read within httpx's per-read timeout) can hold the worker past its delivery lease."""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= 4 * _ERROR_EXCERPT_CHARS or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        pass
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return " ".join(text.split())[:_ERROR_EXCERPT_CHARS]


def _scrub(text: str, url: str) -> str:
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


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=_JSON_SEPARATORS).encode("utf-8")


def _failed(error: str, permanent: bool) -> DeliveryOutcome:
    return DeliveryOutcome(ok=False, permanent=permanent, error=error)


def _utc(now: datetime | None) -> datetime:
    # standardwebhooks' sign() replaces tzinfo with UTC rather than converting, so the
    # attempt time must already be in UTC for the signature to match the header.
    if now is None:
        return datetime.now(UTC)
    return as_utc(now)
