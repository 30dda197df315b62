"""Reads and actions both the pages and the API make, in one place."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from worker.store import alerts as store_alerts
from worker.store import desk, feedback, ops
from worker.store.engine import transaction
from worker.web.common import Desk

Overview = tuple[tuple[desk.StoryOverview, ...], ops.StatusReport, dict[str, datetime | None]]


def status(session: Session, now: datetime) -> ops.StatusReport:
    return ops.status_report(session, now, configured_destinations=())


async def overview(config: Desk) -> Overview:
    """The stories, the feeds' and deliveries' health, and the stories muted now."""
    now = config.clock()

    def run(session: Session) -> Overview:
        return (
            desk.overviews(session, now.date()),
            status(session, now),
            feedback.mutes(session, now),
        )

    return await config.read(run)


class NoSuchAlert(LookupError):
    pass


async def retry(config: Desk, alert_id: str | None) -> str:
    """Dead (and, for one alert, failed) deliveries back to pending, then enqueued.
    NoSuchAlert for an alert id that names none."""

    def run() -> store_alerts.RetryResult | None:
        with transaction(config.sessions) as session:
            if alert_id is not None and not store_alerts.alert_exists(session, alert_id):
                return None
            return store_alerts.retry_deliveries(session, config.clock(), alert_id=alert_id)

    result = await run_in_threadpool(run)
    if result is None:
        raise NoSuchAlert(f"no alert {alert_id}")
    if not result.deliveries:
        return "nothing to retry"
    if config.enqueue is not None:
        await run_in_threadpool(config.enqueue, result.alert_ids)
    return f"{result.deliveries} delivery(ies) back to pending"
