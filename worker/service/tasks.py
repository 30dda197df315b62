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
    for alert_id in stalled.alert_ids:
        deliver_alert.delay(alert_id)
    if stalled.item_ids:
        log.warning("sweep.requeued_items", items=len(stalled.item_ids))
    analyzed = pipeline.keep_statistics(rt)
    if analyzed:
        log.info("sweep.analyzed", tables=analyzed)
    return {
        "feeds": feeds,
        "items": len(stalled.item_ids),
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
    rt = runtime()
    try:
        result = pipeline.process_item(rt, item_id)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        planned = pipeline.item_retry(exc, self.request.retries + 1, rt.settings)
        if planned is None:
            # A bug or bad input: keep the real error on the item (the sweep retries it
            # until MAX_ITEM_ATTEMPTS, then marks it failed with this error) and let
            # Celery log it.
            pipeline.note_item_retry(rt, item_id, error=error, retry_in=None)
            raise
        rule, delay = planned
        if rule.note_on_item:
            pipeline.note_item_retry(rt, item_id, error=error, retry_in=delay)
        log.warning(rule.event, item_id=item_id, error=error[:300], retry_in=round(delay, 1))
        raise self.retry(exc=exc, countdown=delay) from exc
    if result.alert_id:
        deliver_alert.delay(result.alert_id)
    return {"item_id": item_id, "outcome": result.outcome, "alert_id": result.alert_id}


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
