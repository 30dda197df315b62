"""What every use case needs: settings, the database, clients, the clock, the story
tracker (worker.pipeline.tracking). One Runtime per process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy.exc import DatabaseError, OperationalError

from worker.decide.semantic import SemanticConfig
from worker.decide.tracker import TrackerConfig
from worker.delivery.throttle import LocalRateLimiter, RateLimiter, RedisRateLimiter
from worker.errors import ConfigError
from worker.fetch.net import GuardedClient
from worker.pipeline.results import DecidedHere
from worker.pipeline.tracking import TrackerCache
from worker.settings import Settings
from worker.store.engine import (
    DbEngine,
    DbSessions,
    database_reason,
    make_engine,
    make_sessions,
    migrate,
)
from worker.utc import utcnow


@dataclass
class Runtime:
    settings: Settings
    engine: DbEngine
    sessions: DbSessions
    limiter: RateLimiter = field(default_factory=LocalRateLimiter)
    trackers: TrackerCache = field(default_factory=TrackerCache)
    decided: DecidedHere = field(default_factory=DecidedHere)
    clock: Callable[[], datetime] = utcnow

    _fetch: GuardedClient | None = field(default=None, init=False, repr=False)
    _deliver: httpx.Client | None = field(default=None, init=False, repr=False)
    _fetch_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def fetch_client(self) -> GuardedClient:
        """The process's guarded client for feeds and pages (SSRF guard, size caps,
        deadlines), made on first use and shared: its pool keeps connections to a host
        alive between fetches (each new connection's address is checked by the guard,
        so a kept one was checked when it opened). Do not close it; `close` does."""
        with self._fetch_lock:
            if self._fetch is None:
                self._fetch = GuardedClient(self.settings.fetch_policy())
            return self._fetch

    def delivery_client(self) -> httpx.Client:
        """The process's client for destinations, made on first use and shared.
        Destinations are configured by the operator: timeouts, but no address guard.
        Shared because a new client builds an SSL context (the CA bundle read and
        parsed): 7% of a worker's CPU in a burst when each delivery made its own. Do not
        close it; `close` does."""
        with self._fetch_lock:
            if self._deliver is None:
                timeout = httpx.Timeout(self.settings.delivery_timeout_seconds)
                self._deliver = httpx.Client(timeout=timeout, follow_redirects=False)
            return self._deliver

    def close(self) -> None:
        with self._fetch_lock:
            if self._fetch is not None:
                self._fetch.close()
                self._fetch = None
            if self._deliver is not None:
                self._deliver.close()
                self._deliver = None
        self.engine.dispose()


def open_runtime(settings: Settings, *, run_migrations: bool = True) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url, lock_timeout=settings.db_lock_timeout_seconds)
    if run_migrations:
        try:
            migrate(engine)
        except (OperationalError, DatabaseError) as exc:
            # A file that is no database, a directory, a database that does not exist or
            # refuses us: one line at start, not a traceback of the migration.
            engine.dispose()
            reason = database_reason(exc)
            where = engine.url.render_as_string(hide_password=True)
            raise ConfigError([f"STORYWATCH_DATABASE_URL: cannot open {where}: {reason}"]) from exc
    limiter: RateLimiter = (
        RedisRateLimiter(settings.redis_url) if settings.redis_url else LocalRateLimiter()
    )
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessions(engine),
        limiter=limiter,
        trackers=TrackerCache(tracker_config(settings)),
    )


def tracker_config(settings: Settings) -> TrackerConfig:
    """The decision knobs a worker runs with: the defaults, embeddings and the bound on
    what a story keeps as configured."""
    return TrackerConfig(
        semantic=SemanticConfig(enabled=settings.embeddings),
        max_known_sentences=settings.max_known_sentences,
    )
