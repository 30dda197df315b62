"""What a run of an item ends with, shared by its two steps (worker.pipeline.processing
stores, worker.pipeline.deciding decides)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from worker.models import ItemOutcome
from worker.observe import metrics
from worker.store import items
from worker.store.engine import DbSession

# Runs of one item at most, for each of its two steps, each counted when it starts: a
# store run by worker.store.items.take_up, a decision run by decisions.start_decision (not
# its retries of a passing error). Past it, the item fails.
MAX_ITEM_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class ItemResult:
    item_id: int
    outcome: ItemOutcome
    story_id: str | None = None
    alert_id: str | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    """The item's article is stored; its decision is the next step (`decide_item`)."""

    item_id: int
    article_id: int


def finish_item(
    session: DbSession,
    item_id: int,
    outcome: ItemOutcome,
    *,
    article_id: int | None = None,
    story_id: str | None = None,
    alert: str | None = None,
    error: str | None = None,
) -> ItemResult:
    items.finish(session, item_id, outcome, article_id, error)
    return counted(item_id, outcome, story_id, alert)


def counted(
    item_id: int, outcome: ItemOutcome, story_id: str | None, alert: str | None
) -> ItemResult:
    """The item's result, counted in the metrics. Called by the last step before commit,
    so a redelivered item is not counted twice."""
    metrics.count_item(outcome)
    if story_id is not None:
        metrics.count_match(story_id)
        if outcome == "development":
            metrics.count_development(story_id)
    return ItemResult(item_id, outcome, story_id, alert)


def finish_settled(session: DbSession, item_id: int, settled: items.Settled) -> ItemResult:
    """The result of an item that needs no run: as it was settled (counted then), or,
    out of attempts, recorded as failed now with its error (a stored item keeps its
    article)."""
    if settled.error is None:
        return ItemResult(item_id, settled.outcome)
    return finish_item(
        session, item_id, settled.outcome, article_id=settled.article_id, error=settled.error
    )


@dataclass
class DecidedHere:
    """Results of items this process decided with another item's message
    (`worker.pipeline.deciding.decide_ready`), committed: their own messages follow, and
    find here that nothing is left to do, without a query. Bounded (oldest forgotten: a
    forgotten item's message reads it settled from the database, as before)."""

    limit: int = 4_096
    _results: OrderedDict[int, ItemResult] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, results: Iterable[ItemResult]) -> None:
        with self._lock:
            for result in results:
                self._results[result.item_id] = result
            while len(self._results) > self.limit:
                self._results.popitem(last=False)

    def get(self, item_id: int) -> ItemResult | None:
        """The item's result, once: its message is the only one expected."""
        with self._lock:
            return self._results.pop(item_id, None)
