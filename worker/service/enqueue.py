"""Enqueue deliveries from outside a worker (`storywatch alerts retry`, the desk's retry)."""

from __future__ import annotations

from worker.settings import Settings


def enqueue_deliveries(settings: Settings, alert_ids: tuple[str, ...]) -> str | None:
    """Send `storywatch.deliver_alert` for each alert; the broker's error, or None (the
    scheduler's sweep delivers pending, due deliveries anyway: nothing is lost)."""
    from kombu.exceptions import OperationalError  # noqa: PLC0415

    from worker.celery_app import use_settings  # noqa: PLC0415

    use_settings(settings)
    from worker.service.tasks import deliver_alert  # noqa: PLC0415

    try:
        for alert_id in alert_ids:
            deliver_alert.delay(alert_id)
    except (OperationalError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None
