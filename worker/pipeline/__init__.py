"""The use cases: set up, poll a feed, process an item, deliver an alert, sweep stalled
work, prune what is no longer needed.

Celery tasks and CLI commands call these functions; they call the pure stages (`feeds`,
`articles`, `decide`, `alerts`) and the edges (`fetch`, `delivery`, `store`). Each function
is idempotent: running it twice for the same id changes nothing the first run did not.
"""

from worker.pipeline.deciding import decide_item, decide_ready
from worker.pipeline.delivery import DeliverySummary, deliver_alert
from worker.pipeline.polling import PollSummary, claim_due_feeds, due_feed_batches, poll_feed
from worker.pipeline.processing import process_item, store_item
from worker.pipeline.results import MAX_ITEM_ATTEMPTS, ItemResult, Stored
from worker.pipeline.retention import PruneSummary, prune
from worker.pipeline.retries import item_retry
from worker.pipeline.runtime import Runtime, open_runtime
from worker.pipeline.setup import initialise
from worker.pipeline.sweep import (
    StalledWork,
    find_stalled_work,
    keep_statistics,
    note_item_retry,
)

__all__ = [
    "MAX_ITEM_ATTEMPTS",
    "DeliverySummary",
    "ItemResult",
    "PollSummary",
    "PruneSummary",
    "Runtime",
    "StalledWork",
    "Stored",
    "claim_due_feeds",
    "decide_item",
    "decide_ready",
    "deliver_alert",
    "due_feed_batches",
    "find_stalled_work",
    "initialise",
    "item_retry",
    "keep_statistics",
    "note_item_retry",
    "open_runtime",
    "poll_feed",
    "process_item",
    "prune",
    "store_item",
]
