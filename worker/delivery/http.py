"""HTTP delivery: one POST to a receiver, its answer read as a `DeliveryOutcome`.

Redirects are not followed (Standard Webhooks, "Delivery success and failure": a 3xx is a
failure and the URL should be updated), an error body is read for at most the timeout,
and Retry-After is honoured on 429 and 503.
"""

from __future__ import annotations

import time
from datetime import datetime

import httpx

from worker.delivery.common import failed, redact_url, scrub

# One reading of RFC 9110 Retry-After (delay-seconds or HTTP-date, capped) for the project.
from worker.fetch.net import DEFAULT_USER_AGENT, parse_retry_after
from worker.models import DeliveryOutcome, DestinationConfig

_ERROR_EXCERPT_CHARS = 200  # of a failing receiver's body, to explain the failure


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


# Transport failures to outcomes, first match wins (STYLE habit 7: one table, no ladder).
_EXCEPTION_OUTCOMES: tuple[tuple[type[Exception], bool, str], ...] = (
    (httpx.InvalidURL, True, "invalid URL"),
    (httpx.UnsupportedProtocol, True, "unsupported URL scheme"),
    (httpx.LocalProtocolError, True, "request could not be built"),
    (httpx.TimeoutException, False, "timed out"),
    (httpx.TransportError, False, "connection failed"),
    (httpx.HTTPError, False, "HTTP error"),
)


def post(
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
        return failed(f"{destination.kind} destination {destination.id!r} has no url", True)
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
        detail = scrub(str(exc), url)
        message = f"{label} posting to {where} ({type(exc).__name__}" + (
            f": {detail})" if detail else ")"
        )
        return failed(message, permanent)
    reason = response.reason_phrase or "error"
    message = f"HTTP {response.status_code} {reason} from {where}"
    if excerpt:
        message += f": {scrub(excerpt, url)}"
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
