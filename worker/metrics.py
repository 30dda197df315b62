"""Prometheus metrics: pipeline counters and stage latencies, store state, /healthz.

Two kinds of numbers, read two ways:
1. Events counted where they happen (`count_poll`, `observe_stage`, ...): polls, items,
   matches, developments, deliveries, stage latencies. They live in the process that ran
   the task. Under Celery's prefork pool that is a child process, so they reach /metrics
   only in prometheus_client's multiprocess mode (see `metrics_env.prepare_multiprocess`);
   without it, /metrics shows the serving process's own counters only, which is complete
   for `--pool=solo`/threads (`storywatch run`) and empty for prefork children.
2. State read from the database at scrape time (`StoreCollector`): consecutive feed
   errors, stale feeds, the outbox by destination and status. Right however many worker
   processes or machines there are, because the database is the source of truth.
The worker's main process serves both, plus `/healthz`, on STORYWATCH_METRICS_PORT.

What this module must not do: choose the multiprocess mode (too late once imported), hold
a database connection across a fork, let a metrics failure break a task or the worker, or
take labels from unbounded values (URLs, article ids): labels are outcomes, stages, story
and destination ids, all bounded by configuration.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    make_wsgi_app,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from worker import ops
from worker.logs import get_logger, redact_text
from worker.metrics_env import metrics_address, metrics_port, multiprocess_dir
from worker.settings import Settings
from worker.store.schema import utcnow

log = get_logger(__name__)

EVENT_STARTED = "metrics.server_started"
EVENT_DISABLED = "metrics.server_disabled"
EVENT_FAILED = "metrics.server_failed"
EVENT_STORE_UNAVAILABLE = "metrics.store_unavailable"

STAGES = ("poll", "fetch_extract", "decide", "deliver")
# From a cached decision (ms) to a slow feed at the 20 s fetch timeout and beyond.
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
HEALTH_PATHS = ("/healthz", "/health")
HEALTH_TIMEOUT_SECONDS = 2.0

# The pipeline's own registry. Not the global default: the server composes it with the
# store collector, and tests can read it without the process collector's noise.
PIPELINE = CollectorRegistry(auto_describe=True)
POLLS = Counter(
    "storywatch_polls",
    "Feed polls by outcome (fetched, not_modified, unchanged, error, gone).",
    ["outcome"],
    registry=PIPELINE,
)
ITEMS = Counter(
    "storywatch_items",
    "Feed items processed, by outcome (development, rehash, unmatched, duplicate, failed).",
    ["outcome"],
    registry=PIPELINE,
)
MATCHES = Counter(
    "storywatch_matches", "Articles matched to a tracked story.", ["story"], registry=PIPELINE
)
DEVELOPMENTS = Counter(
    "storywatch_developments",
    "New developments detected (each one alert), by story.",
    ["story"],
    registry=PIPELINE,
)
DELIVERIES = Counter(
    "storywatch_deliveries",
    "Delivery attempts by destination and outcome (delivered, failed, dead, postponed).",
    ["destination", "outcome"],
    registry=PIPELINE,
)
STAGE_SECONDS = Histogram(
    "storywatch_stage_duration_seconds",
    "Time spent in a pipeline stage (poll, fetch_extract, decide, deliver).",
    ["stage"],
    buckets=STAGE_BUCKETS,
    registry=PIPELINE,
)


def count_poll(outcome: str) -> None:
    POLLS.labels(outcome=outcome).inc()


def count_item(outcome: str) -> None:
    ITEMS.labels(outcome=outcome).inc()


def count_match(story_id: str) -> None:
    MATCHES.labels(story=story_id).inc()


def count_development(story_id: str) -> None:
    DEVELOPMENTS.labels(story=story_id).inc()


def count_delivery(destination_id: str, outcome: str) -> None:
    DELIVERIES.labels(destination=destination_id, outcome=outcome).inc()


@contextmanager
def observe_stage(stage: str) -> Iterator[None]:
    """Time the enclosed block as `stage`, whether it returns or raises."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    started = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage=stage).observe(time.perf_counter() - started)


def multiprocess_active() -> bool:
    """True when this process's metric values are shared files (multiprocess mode)."""
    return values.ValueClass is not values.MutexValue


# ---------------------------------------------------------------------------------------
# State read from the store at scrape time


class StoreCollector(Collector):
    """Gauges computed from the database on every scrape; never raises into a scrape."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        configured_destinations: tuple[str, ...] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._destinations = configured_destinations
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        # Nothing up front: registering must not query the database.
        return []

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("storywatch_store_up", "1 when the database answered the scrape.")
        now = self._clock()
        try:
            with self._sessions() as session:
                feeds = ops.feed_statuses(session, now)
                destinations = ops.destination_statuses(session, self._destinations)
        except SQLAlchemyError as exc:
            log.warning(EVENT_STORE_UNAVAILABLE, error=_short_error(exc))
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *_feed_families(feeds), *_outbox_families(destinations, now)]


def _feed_families(feeds: tuple[ops.FeedStatus, ...]) -> list[Metric]:
    errors = GaugeMetricFamily(
        "storywatch_feed_consecutive_errors",
        "Consecutive failed polls of a feed (0 after a success).",
        labels=["feed"],
    )
    stale = GaugeMetricFamily(
        "storywatch_feed_stale",
        "1 when a feed is stale: 5+ consecutive errors, or no success for max(3 polls, 1 h).",
        labels=["feed"],
    )
    last_success = GaugeMetricFamily(
        "storywatch_feed_last_success_timestamp_seconds",
        "Unix time of a feed's last successful poll.",
        labels=["feed"],
    )
    for feed in feeds:
        errors.add_metric([feed.id], feed.error_count)
        stale.add_metric([feed.id], int(feed.stale))
        if feed.last_success_at is not None:
            last_success.add_metric([feed.id], feed.last_success_at.timestamp())
    total = GaugeMetricFamily("storywatch_stale_feeds", "Number of stale feeds.")
    total.add_metric([], sum(feed.stale for feed in feeds))
    return [errors, stale, last_success, total]


def _outbox_families(
    destinations: tuple[ops.DestinationStatus, ...], now: datetime
) -> list[Metric]:
    outbox = GaugeMetricFamily(
        "storywatch_outbox_deliveries",
        "Deliveries in the outbox by destination and status (pending, failed, dead, delivered).",
        labels=["destination", "status"],
    )
    oldest = GaugeMetricFamily(
        "storywatch_outbox_oldest_waiting_seconds",
        "Age of the oldest delivery still waiting (pending or failed), per destination.",
        labels=["destination"],
    )
    for dest in destinations:
        for status in ops.DELIVERY_STATUSES:
            outbox.add_metric([dest.id, status], getattr(dest, status))
        waited = (now - dest.oldest_waiting_at).total_seconds() if dest.oldest_waiting_at else 0
        oldest.add_metric([dest.id], max(waited, 0.0))
    return [outbox, oldest]


class _PipelineCounters(Collector):
    """The in-process counters, when they are not shared files (single-process mode)."""

    def collect(self) -> Iterable[Metric]:
        return PIPELINE.collect()


def build_registry(
    sessions: sessionmaker[Session],
    *,
    configured_destinations: tuple[str, ...] = (),
    clock: Callable[[], datetime] = utcnow,
) -> CollectorRegistry:
    """What /metrics serves: pipeline counters (all processes, or this one), store state,
    and the serving process's CPU and memory (prefork children's are not aggregated)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_active() and multiprocess_dir(os.environ) is not None:
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_PipelineCounters())
    registry.register(
        StoreCollector(sessions, configured_destinations=configured_destinations, clock=clock)
    )
    ProcessCollector(registry=registry)
    return registry


# ---------------------------------------------------------------------------------------
# Health


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    checks: dict[str, str]  # name -> "ok", or the reason it failed

    def to_json(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "unavailable", "checks": self.checks}


def check_health(
    sessions: sessionmaker[Session],
    redis_url: str | None,
    *,
    timeout: float = HEALTH_TIMEOUT_SECONDS,
) -> Health:
    """The database answers a query and, when Redis is the broker, Redis answers PING."""
    checks: dict[str, str] = {}
    try:
        with sessions() as session:
            ops.database_answers(session)
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = _short_error(exc)
    if redis_url:
        import redis  # noqa: PLC0415 - only distributed mode has a Redis to ask

        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            client.ping()
            checks["broker"] = "ok"
        except redis.RedisError as exc:
            checks["broker"] = _short_error(exc)
        finally:
            client.close()
    return Health(all(v == "ok" for v in checks.values()), checks)


def _short_error(exc: Exception) -> str:
    # Driver messages may name hosts and users; registered secrets are masked out.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact_text(f"{type(exc).__name__}: {first}")[:300]


# ---------------------------------------------------------------------------------------
# The server


def metrics_app(registry: CollectorRegistry, health: Callable[[], Health]) -> WSGIApplication:
    """prometheus_client's /metrics app, with /healthz answering 200 or 503 in JSON."""
    metrics = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in HEALTH_PATHS:
            result = health()
            body = json.dumps(result.to_json()).encode("utf-8")
            status = "200 OK" if result.ok else "503 Service Unavailable"
            start_response(
                status,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [body]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every 15 s would drown the worker's log; log nothing."""


@dataclass(frozen=True, slots=True)
class MetricsServer:
    httpd: WSGIServer
    thread: threading.Thread
    host: str
    port: int

    def url(self, path: str = "/metrics") -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_metrics(settings: Settings, *, host: str, port: int) -> MetricsServer:
    """Serve /metrics and /healthz on a daemon thread (port 0: any free port)."""
    sessions = ops.reader_sessions(settings.database_url)
    registry = build_registry(
        sessions, configured_destinations=tuple(d.id for d in settings.destinations)
    )
    app = metrics_app(registry, lambda: check_health(sessions, settings.redis_url))

    class _Server(ThreadingWSGIServer):
        # As prometheus_client's start_http_server: IPv6 when the address is IPv6.
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    httpd = make_server(host, port, app, _Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="storywatch-metrics", daemon=True)
    thread.start()
    return MetricsServer(httpd, thread, host, httpd.server_port)


class _HasSettings(Protocol):
    @property
    def settings(self) -> Settings: ...


_started: dict[int, MetricsServer | None] = {}  # by pid: once per process, never in a child
_start_lock = threading.Lock()


def start_metrics_server(source: Settings | _HasSettings) -> MetricsServer | None:
    """Start the server once in this process, as configured; None when disabled or failed.

    Connect to Celery's `worker_ready` signal: it fires in the main process after the pool
    has forked, so no child inherits the listening thread. A taken port is logged, not
    raised: a worker without metrics still delivers alerts.
    """
    settings = source if isinstance(source, Settings) else source.settings
    with _start_lock:
        if os.getpid() in _started:
            return _started[os.getpid()]
        port = metrics_port(os.environ)
        server: MetricsServer | None = None
        if port == 0:
            log.info(EVENT_DISABLED)
        else:
            host = metrics_address(os.environ)
            try:
                server = serve_metrics(settings, host=host, port=port)
            except OSError as exc:
                log.error(EVENT_FAILED, host=host, port=port, error=str(exc))
            else:
                log.info(
                    EVENT_STARTED,
                    host=host,
                    port=server.port,
                    multiprocess=multiprocess_active(),
                )
        _started[os.getpid()] = server
        return server
