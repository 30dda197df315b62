"""Apprise delivery: one URL that reaches any of about 100 services (optional extra)."""

from __future__ import annotations

import importlib
from typing import Any

from worker.alerts.payloads import console_text, headline
from worker.delivery.common import failed, redact_url
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig


def to_apprise(
    alert: AlertContent, destination: DestinationConfig, message: str | None
) -> DeliveryOutcome:
    """Apprise (optional extra `storywatch[apprise]`) speaks to ~100 services; it does its
    own HTTP with its own timeouts (4 s connect and read by default, `cto`/`rto` in the
    URL), and reports success or failure only, so a failure is always retried."""
    if not destination.url:
        return failed(f"apprise destination {destination.id!r} has no url", True)
    try:
        apprise: Any = importlib.import_module("apprise")
    except ImportError:
        return failed("apprise is not installed: pip install 'storywatch[apprise]'", True)
    notifier = apprise.Apprise()
    where = redact_url(destination.url)
    if not notifier.add(destination.url):
        return failed(f"apprise does not understand the URL {where}", True)
    result = notifier.notify(
        title=f"{headline(alert)}: {alert.story_title}",
        body=message if message is not None else console_text(alert),
    )
    ok = bool(result)  # a bool before Apprise 2, an AppriseResult (truthy on success) after
    close = getattr(result, "close", None)
    if callable(close):
        close()
    if ok:
        return DeliveryOutcome(ok=True)
    return failed(f"apprise could not deliver to {where}", False)
