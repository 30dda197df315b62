"""Circuits and rate limits: stop hammering a destination that is down; pace the rest."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis

from worker.delivery.throttle import (
    FAILURES_TO_OPEN,
    Circuit,
    LocalRateLimiter,
    RedisRateLimiter,
    after_failure,
    after_success,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_circuit_opens_after_consecutive_failures_and_backs_off_longer_each_time() -> None:
    circuit = Circuit()
    for _ in range(FAILURES_TO_OPEN - 1):
        circuit = after_failure(circuit, NOW)
        assert not circuit.is_open(NOW)
    circuit = after_failure(circuit, NOW)
    assert circuit.is_open(NOW) and circuit.open_until is not None
    first = circuit.open_until - NOW
    probe_failed = after_failure(circuit, circuit.open_until)
    assert probe_failed.open_until is not None
    assert probe_failed.open_until - circuit.open_until == first * 2
    assert not after_success().is_open(NOW)


def test_local_limiter_paces_to_the_rate_and_allows_a_burst() -> None:
    limiter = LocalRateLimiter()
    assert limiter.reserve("slack", per_second=1.0) == 0.0
    wait = limiter.reserve("slack", per_second=1.0)
    assert 0.9 < wait <= 1.0
    assert limiter.reserve("other", per_second=1.0) == 0.0  # keys are independent
    burst = LocalRateLimiter()
    assert [burst.reserve("k", per_second=1.0, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert burst.reserve("k", per_second=1.0, burst=3) > 0


@pytest.mark.redis
def test_redis_limiter_is_shared_by_every_worker(redis_url: str) -> None:
    """Two limiters (two processes) racing for one key: exactly one token per interval."""
    first, second = RedisRateLimiter(redis_url), RedisRateLimiter(redis_url)
    grants: list[float] = []
    barrier = threading.Barrier(8)

    def take(limiter: RedisRateLimiter) -> None:
        barrier.wait()
        grants.append(limiter.reserve("hook", per_second=0.5))

    threads = [threading.Thread(target=take, args=(limiter,)) for limiter in [first, second] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first.close()
    second.close()
    assert grants.count(0.0) == 1, grants
    assert all(1.5 < wait <= 2.0 for wait in grants if wait), grants


@pytest.mark.redis
def test_redis_limiter_keeps_microseconds_so_no_wait_exceeds_one_interval(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete("storywatch:ratelimit:precise")
        assert limiter.reserve("precise", per_second=0.5) == 0.0
        stored = client.get("storywatch:ratelimit:precise")
        waits = [limiter.reserve("precise", per_second=0.5) for _ in range(50)]
    finally:
        limiter.close()
        client.close()
    assert stored is not None and len(stored.split(b".")[1]) == 6  # Unix time to the µs
    assert all(0.0 < wait <= 2.0 for wait in waits), max(waits)


def test_redis_limiter_falls_back_to_memory_when_redis_is_down() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert limiter.reserve("hook", per_second=1.0) == 0.0
    assert limiter.reserve("hook", per_second=1.0) > 0
    limiter.close()


def test_expiry_is_a_timedelta_not_a_bare_number() -> None:
    opened = after_failure(Circuit(FAILURES_TO_OPEN - 1), NOW)
    assert isinstance(opened.open_until, datetime)
    assert opened.open_until - NOW >= timedelta(seconds=30)
