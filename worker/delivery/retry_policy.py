"""How long to wait between delivery attempts, and how many attempts an alert gets.

What this module is for: the retry schedule the delivery task applies after a failed
attempt (`worker.delivery.notify` makes one attempt and says how it went; `worker.pipeline.delivery`
records it and schedules the next one from here): `worker.errors.backoff_delay` with full
jitter, a receiver's Retry-After as a floor, and a cap on both.

What it must not do: sleep, send or read clocks: it computes a number of seconds.
"""

from __future__ import annotations

import random

from worker.errors import backoff_delay

# Retry policy. With full jitter the expected wait is half of each window; windows double
# from 30 s up to the 6 h cap, so 16 attempts span about 19 hours on average: a receiver
# that is down overnight still gets the alert (Standard Webhooks, "Deliverability and
# reliability", recommends a schedule spanning days with exponential backoff and jitter).
MAX_ATTEMPTS = 16
BASE_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 6 * 3600.0


def next_attempt_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = BASE_DELAY_SECONDS,
    cap: float = MAX_DELAY_SECONDS,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first attempt):
    `backoff_delay` with full jitter, which spreads retries of many alerts to one
    recovering receiver instead of having them arrive in waves, and the receiver's
    Retry-After as a minimum under the cap."""
    return backoff_delay(attempt, base=base, cap=cap, jitter=1.0, floor=retry_after, rng=rng)
