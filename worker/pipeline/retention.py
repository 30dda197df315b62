"""Retention: delete what the service no longer needs, in short transactions.

Runs daily (the `storywatch.prune` task) and on demand (`storywatch prune`). Ages come
from the settings; 0 keeps that kind of row forever. Alerts, developments and their
sources, stories and what they learned are never pruned: the decisions made stay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.observe.logs import get_logger
from worker.pipeline.runtime import Runtime
from worker.store import retention
from worker.store.engine import DbSession, transaction

log = get_logger(__name__)

BATCH = 1_000  # rows per transaction: no lock is held long, a busy worker waits little


@dataclass(frozen=True, slots=True)
class PruneSummary:
    items: int = 0
    articles_trimmed: int = 0
    deliveries: int = 0


def prune(runtime: Runtime) -> PruneSummary:
    """Delete processed items, trim old articles' text and delete delivered deliveries
    older than their configured ages."""
    settings, now = runtime.settings, runtime.clock()
    summary = PruneSummary(
        items=_in_batches(runtime, retention.delete_items, now, settings.keep_items_days),
        articles_trimmed=_in_batches(
            runtime, retention.trim_articles, now, settings.keep_article_text_days
        ),
        deliveries=_in_batches(
            runtime, retention.delete_deliveries, now, settings.keep_deliveries_days
        ),
    )
    log.info(
        "retention.pruned",
        items=summary.items,
        articles_trimmed=summary.articles_trimmed,
        deliveries=summary.deliveries,
    )
    return summary


def _in_batches(
    runtime: Runtime,
    step: Callable[[DbSession, datetime, int], int],
    now: datetime,
    days: float,
) -> int:
    if days <= 0:
        return 0
    before = now - timedelta(days=days)
    total = 0
    while True:
        with transaction(runtime.sessions) as session:
            done = step(session, before, BATCH)
        total += done
        if done < BATCH:
            return total
