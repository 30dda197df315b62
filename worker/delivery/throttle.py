"""Protect destinations: a circuit that stops hammering one that is down, and rate limits.

The circuit's state lives in the database (one row per destination) so every worker
process sees the same state; its logic is the pure functions below. Rate limits are a
GCRA token bucket (the "generic cell rate algorithm" of ATM networks, as in
redis-cell and Stripe's limiter): atomic in Redis when Redis is configured, in process
memory otherwise (the embedded service is one process). Losing a rate-limit token is
harmless, so Redis is the right place for it (DESIGN §2).

It must not: send anything, or decide retries (delivery.py does, with these answers).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis

from worker.errors import backoff_delay
from worker.observe.logs import get_logger

log = get_logger(__name__)

FAILURES_TO_OPEN = 5  # consecutive transient failures that open the circuit
BASE_COOLDOWN = timedelta(seconds=30)
MAX_COOLDOWN = timedelta(hours=1)
MAX_INLINE_WAIT_SECONDS = 2.0  # wait this long for a token in-task; longer: reschedule


@dataclass(frozen=True, slots=True)
class Circuit:
    """Consecutive failures of one destination and, when open, until when."""

    failures: int = 0
    open_until: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        return self.open_until is not None and now < self.open_until


def after_success() -> Circuit:
    return Circuit()


def after_failure(circuit: Circuit, now: datetime) -> Circuit:
    """One more transient failure; the circuit opens at FAILURES_TO_OPEN.

    Each failure past the threshold doubles the cool-down (30 s, 1 min, 2 min, ... 1 h):
    after a cool-down the next delivery is the probe (half-open); if it fails too, the
    circuit opens again for longer.
    """
    failures = circuit.failures + 1
    if failures < FAILURES_TO_OPEN:
        return Circuit(failures, None)
    seconds = backoff_delay(
        failures - FAILURES_TO_OPEN + 1,
        base=BASE_COOLDOWN.total_seconds(),
        cap=MAX_COOLDOWN.total_seconds(),
        jitter=0.0,  # one circuit per destination: nothing to spread
    )
    cooldown = timedelta(seconds=seconds)
    return Circuit(failures, now + cooldown)


class RateLimiter(Protocol):
    def reserve(self, key: str, per_second: float, burst: int = 1) -> float:
        """Take one token; returns 0 when allowed now, else seconds to wait (nothing taken)."""
        ...


class LocalRateLimiter:
    """GCRA in process memory: right when one process does all deliveries (embedded)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}  # theoretical arrival time per key
        self._lock = threading.Lock()

    def reserve(self, key: str, per_second: float, burst: int = 1) -> float:
        interval = 1.0 / per_second
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat.get(key, now), now)
            allowed_at = tat - interval * (burst - 1)
            if allowed_at > now:
                return allowed_at - now
            self._tat[key] = tat + interval
            return 0.0


# KEYS[1]: the bucket; ARGV: interval (s), burst. Returns wait seconds as a string (Lua
# numbers lose precision through Redis integer replies). The clock is Redis's own, read
# inside the script, so workers with skewed clocks agree and no call can interleave.
_GCRA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - interval * (burst - 1)
if allowed_at > now then return string.format('%.6f', allowed_at - now) end
local ttl = math.ceil((tat + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'PX', ttl)
return '0'
"""
# %.6f, not tostring: Lua's tostring keeps 14 significant digits, so a Unix time stored
# with it lost its last microseconds, and the next caller could be told to wait a little
# longer than one interval (2.000007 s at 0.5 per second).


class RedisRateLimiter:
    """GCRA in Redis, atomic across every worker; falls back to memory if Redis is down."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._client.register_script(_GCRA)
        self._fallback = LocalRateLimiter()

    def reserve(self, key: str, per_second: float, burst: int = 1) -> float:
        try:
            wait = self._script(
                keys=[f"storywatch:ratelimit:{key}"], args=[1.0 / per_second, burst]
            )
            return float(wait)
        except redis.RedisError as exc:
            log.warning("ratelimit.redis_unavailable", key=key, error=str(exc))
            return self._fallback.reserve(key, per_second, burst)

    def close(self) -> None:
        self._client.close()
