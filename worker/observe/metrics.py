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
The worker's main process serves both, plus `/healthz`, on STORYWATCH_METRICS_PORT
(`worker.observe.server`).

What this module must not do: choose the multiprocess mode (too late once imported), hold
a database connection across a fork, let a metrics failure break a task or the worker, or
take labels from unbounded values (URLs, article ids): labels are outcomes, stages, story
and destination ids, all bounded by configuration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from worker.models import DELIVERY_STATUSES
from worker.observe.logs import get_logger, redact_text
from worker.observe.metrics_env import multiprocess_dir
from worker.store import ops
from worker.utc import utcnow

log = get_logger(__name__)

EVENT_STORE_UNAVAILABLE = "metrics.store_unavailable"

STAGES = ("poll", "fetch_extract", "decide", "deliver")
# From a cached decision (ms) to a slow feed at the 20 s fetch timeout and beyond.
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)

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

DECIDED_TOGETHER = Histogram(
    "storywatch_decide_batch_items",
    "Items one deciding transaction settled: 1 at a time, up to 16 together on PostgreSQL "
    "when a backlog waits (worker.pipeline.deciding.decide_ready).",
    buckets=(1, 2, 4, 8, 16),
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


def count_decided_together(items: int) -> None:
    DECIDED_TOGETHER.observe(items)


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
            log.warning(EVENT_STORE_UNAVAILABLE, error=short_error(exc))
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
        for status in DELIVERY_STATUSES:
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


def short_error(exc: Exception) -> str:
    # Driver messages may name hosts and users; registered secrets are masked out.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact_text(f"{type(exc).__name__}: {first}")[:300]
