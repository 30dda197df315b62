"""Find work whose broker message may be lost, so the periodic tick can enqueue it again.

The database is the source of truth; the broker only carries ids. An item still `new`
long after it was queued, or a delivery due, not leased and not queued in the last
lease, means a message was lost
(worker killed before acking, broker restarted empty): enqueueing again is safe because
every task is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import OperationalError

from worker.observe.logs import get_logger
from worker.pipeline.delivery import lease_for
from worker.pipeline.runtime import Runtime
from worker.store import queue, statistics
from worker.store.engine import transaction

log = get_logger(__name__)

ITEM_STALL_AFTER = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class StalledWork:
    item_ids: tuple[int, ...]  # to run from the start (process_item)
    alert_ids: tuple[str, ...]
    # Stored, waiting for their decision (decide_item): a decider that is down or far
    # behind leaves them so, and waiting costs them no attempt.
    decide_ids: tuple[int, ...] = ()


def find_stalled_work(
    runtime: Runtime, *, item_stall_after: timedelta = ITEM_STALL_AFTER, limit: int = 500
) -> StalledWork:
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        item_ids, decide_ids = queue.claim_stalled_items(session, now, item_stall_after, limit)
        alert_ids = queue.claim_due_deliveries(session, now, lease_for(runtime), limit)
    return StalledWork(item_ids, alert_ids, decide_ids)


def note_item_retry(runtime: Runtime, item_id: int, *, error: str, retry_in: float | None) -> None:
    """Record why an item's run failed and, when a retry is scheduled, when it is due.

    The sweep treats an item as stalled ITEM_STALL_AFTER past `queued_at`: moving
    `queued_at` to the retry's due time keeps the sweep from running it early (hitting a
    host that asked us to wait), while a retry message that is lost is still found.
    """
    now = runtime.clock()
    due = now + timedelta(seconds=retry_in) if retry_in is not None else None
    with transaction(runtime.sessions) as session:
        queue.note_item_error(session, item_id, error, due)


def keep_statistics(runtime: Runtime) -> list[str]:
    """Analyze the hot tables whose planner statistics fell behind (worker.store.statistics);
    returns the tables analyzed. A no-op on SQLite."""
    if runtime.engine.dialect.name != "postgresql":
        return []
    try:
        with transaction(runtime.sessions) as session:
            stale = statistics.stale_tables(session)
            if not stale or not statistics.analyze(session, stale):
                return []
    except OperationalError as exc:
        # Best effort: the tick's real work (polls, the sweep) is done; the next tick
        # tries again.
        log.warning("sweep.analyze_failed", error=str(exc)[:300])
        return []
    return stale
