"""How long to wait between delivery attempts, and how many attempts an alert gets.

What this module is for: the retry schedule the delivery task applies after a failed
attempt (`worker.delivery.notify` makes one attempt and says how it went; `worker.pipeline.delivery`
records it and schedules the next one from here). Exponential backoff with full jitter,
a receiver's Retry-After as a floor, and a cap on both.

What it must not do: sleep, send or read clocks: it computes a number of seconds.
"""

from __future__ import annotations

import random

# Retry policy. With full jitter the expected wait is half of each window; windows double
# from 30 s up to the 6 h cap, so 16 attempts span about 19 hours on average: a receiver
# that is down overnight still gets the alert (Standard Webhooks, "Deliverability and
# reliability", recommends a schedule spanning days with exponential backoff and jitter).
MAX_ATTEMPTS = 16
BASE_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 6 * 3600.0

_RNG = random.Random()


def next_attempt_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = BASE_DELAY_SECONDS,
    cap: float = MAX_DELAY_SECONDS,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first attempt).

    Exponential backoff with full jitter: a uniform draw from [0, min(cap, base * 2^(n-1))],
    which spreads retries of many alerts to one recovering receiver instead of having them
    arrive in waves (AWS Architecture Blog, "Exponential Backoff And Jitter").
    A receiver's Retry-After is a minimum (RFC 9110 §10.2.3), but the cap still wins, so a
    bogus "Retry-After: 31536000" cannot park an alert for a year.
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    window = min(cap, base * 2.0 ** min(attempt - 1, 64))
    delay = (rng if rng is not None else _RNG).uniform(0.0, window)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap)
