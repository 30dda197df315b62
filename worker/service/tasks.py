"""Celery tasks: thin wrappers that take ids, call one pipeline function, return a summary.

Only ids cross the broker (JSON). Every task is idempotent, which is what makes
`acks_late` redelivery safe. What a failure does next is one table
(`worker.pipeline.retries`); the tasks only carry it out.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from worker import pipeline
from worker.celery_app import app, runtime
from worker.observe.logs import get_logger

log = get_logger(__name__)


@app.task(name="storywatch.poll_due_feeds", acks_late=False)
def poll_due_feeds() -> dict[str, int]:
    """Beat's tick: enqueue due feeds, re-enqueue work whose message was lost, and keep
    the planner's statistics of the hot tables current."""
    rt = runtime()
    feeds = 0
    for batch in pipeline.due_feed_batches(rt):
        for feed_id in batch:
            poll_feed.delay(feed_id)
        feeds += len(batch)
    stalled = pipeline.find_stalled_work(rt)
    for item_id in stalled.item_ids:
        process_item.delay(item_id)
    for item_id in stalled.decide_ids:
        decide_item.delay(item_id)
    for alert_id in stalled.alert_ids:
        deliver_alert.delay(alert_id)
    if stalled.item_ids or stalled.decide_ids:
        log.warning(
            "sweep.requeued_items", items=len(stalled.item_ids), decisions=len(stalled.decide_ids)
        )
    analyzed = pipeline.keep_statistics(rt)
    if analyzed:
        log.info("sweep.analyzed", tables=analyzed)
    return {
        "feeds": feeds,
        "items": len(stalled.item_ids),
        "decisions": len(stalled.decide_ids),
        "alerts": len(stalled.alert_ids),
    }


@app.task(name="storywatch.poll_feed")
def poll_feed(feed_id: str) -> dict[str, Any]:
    summary = pipeline.poll_feed(runtime(), feed_id)
    for item_id in summary.new_item_ids:
        process_item.delay(item_id)
    return {"feed_id": feed_id, "status": summary.status, "new_items": len(summary.new_item_ids)}


@app.task(bind=True, name="storywatch.process_item", max_retries=5)
def process_item(self: Task, item_id: int) -> dict[str, Any]:
    """Store the item's article; its decision is queued for the deciding worker."""
    rt = runtime()
    try:
        result = pipeline.store_item(rt, item_id)
    except Exception as exc:
        raise _retry(self, rt, item_id, exc) from exc
    if isinstance(result, pipeline.Stored):
        decide_item.delay(item_id)
        return {"item_id": item_id, "outcome": "stored", "article_id": result.article_id}
    return {"item_id": item_id, "outcome": result.outcome}


@app.task(bind=True, name="storywatch.decide_item", max_retries=8)
def decide_item(self: Task, item_id: int) -> dict[str, Any]:
    rt = runtime()
    # A new run of the decision, which counts one of the item's attempts: a first run,
    # or one the broker handed back because the run before never answered (its process
    # died mid-decision). Celery's retries after a passing error continue the same run.
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    new_run = self.request.retries == 0 or redelivered
    try:
        # With other stored items, when there are any (worker.pipeline.deciding).
        results = pipeline.decide_ready(rt, item_id, new_run=new_run)
    except Exception as exc:
        raise _retry(self, rt, item_id, exc) from exc
    for result in results:
        if result.alert_id:
            deliver_alert.delay(result.alert_id)
    own = results[0]
    return {
        "item_id": item_id,
        "outcome": own.outcome,
        "alert_id": own.alert_id,
        "decided_with": [result.item_id for result in results[1:]],
    }


def _retry(task: Task, rt: pipeline.Runtime, item_id: int, exc: Exception) -> BaseException:
    """What an item task raises after `exc`: Celery's retry, as `pipeline.item_retry`
    plans it, or the error itself (noted on the item, for the sweep)."""
    error = f"{type(exc).__name__}: {exc}"
    planned = pipeline.item_retry(exc, task.request.retries + 1, rt.settings)
    if planned is None:
        # A bug or bad input: keep the real error on the item (the sweep retries it until
        # MAX_ITEM_ATTEMPTS, then marks it failed with this error) and let Celery log it.
        pipeline.note_item_retry(rt, item_id, error=error, retry_in=None)
        return exc
    rule, delay = planned
    # Celery's last retry: the item is left to the sweep with its error noted (the run was
    # counted when it started, so a decision that fails so on every sweep ends).
    exhausted = task.max_retries is not None and task.request.retries >= task.max_retries
    if rule.note_on_item or exhausted:
        pipeline.note_item_retry(rt, item_id, error=error, retry_in=delay)
    log.warning(rule.event, item_id=item_id, error=error[:300], retry_in=round(delay, 1))
    retry: BaseException = task.retry(exc=exc, countdown=delay)
    return retry


@app.task(name="storywatch.deliver_alert")
def deliver_alert(alert_id: str) -> dict[str, Any]:
    summary = pipeline.deliver_alert(runtime(), alert_id)
    return {
        "alert_id": alert_id,
        "delivered": summary.delivered,
        "failed": summary.failed,
        "dead": summary.dead,
    }


@app.task(name="storywatch.prune")
def prune() -> dict[str, int]:
    """Beat's daily retention run (worker.pipeline.retention)."""
    summary = pipeline.prune(runtime())
    return {
        "items": summary.items,
        "articles_trimmed": summary.articles_trimmed,
        "deliveries": summary.deliveries,
    }
