"""Digests: a destination with `digest_every_minutes` gets one message per period listing
every alert that came due, instead of one message per alert.

Each alert keeps its own delivery row (so none is lost and each is recorded delivered);
a digest is the batch of a destination's deliveries that are due at once. Its id is
derived from the alert ids it holds, so a retried digest with the same alerts keeps its
webhook-id and receivers can drop a repeat.

Webhooks get `{"type": "story.digest", "id", "alerts": [<story.development payloads>],
"created_at"}`; JSONL gets one line per alert; console, Slack and Apprise get a readable
summary built as one alert-shaped message.

This module is the pure half: periods, ids, the payload and the readable summary.
Sending a digest is `worker.delivery.digest`'s job.

It must not: choose which deliveries are due (pipeline/delivery.py does), or do I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from worker.alerts.payloads import iso_utc, webhook_payload
from worker.models import AlertContent

DIGEST_TYPE = "story.digest"
MAX_LISTED = 40  # alerts listed one by one in a human-readable digest; more are counted


def next_digest_time(now: datetime, minutes: int) -> datetime:
    """The end of the current period, periods aligned on the Unix epoch (so every worker
    computes the same boundaries)."""
    period = minutes * 60
    seconds = int(now.timestamp())
    return datetime.fromtimestamp((seconds // period + 1) * period, tz=UTC)


def digest_id(alerts: Sequence[AlertContent]) -> str:
    joined = "\n".join(sorted(alert.id for alert in alerts))
    return "dgst_" + hashlib.sha256(joined.encode()).hexdigest()[:24]


def digest_payload(alerts: Sequence[AlertContent], now: datetime) -> dict[str, Any]:
    return {
        "type": DIGEST_TYPE,
        "id": digest_id(alerts),
        "alerts": [webhook_payload(alert) for alert in alerts],
        "created_at": iso_utc(now),
    }


def digest_as_alert(alerts: Sequence[AlertContent], now: datetime) -> AlertContent:
    """The digest in the shape human-readable renderers (console, Slack, Apprise) take."""
    stories = sorted({alert.story_title for alert in alerts})
    count = len(alerts)
    lines = []
    for alert in alerts[:MAX_LISTED]:
        fact = alert.new_facts[0] if alert.new_facts else (alert.article_title or "")
        link = f" ({alert.article_url})" if alert.article_url else ""
        lines.append(f"{alert.story_title}: {fact}{link}")
    if count > MAX_LISTED:
        lines.append(f"…and {count - MAX_LISTED} more")
    return AlertContent(
        id=digest_id(alerts),
        story_id="digest",
        story_title=f"{count} new development{'s' if count != 1 else ''}: {', '.join(stories)}",
        article_url=None,
        article_title=None,
        source=None,
        published=None,
        new_facts=tuple(lines),
        score=max(alert.score for alert in alerts),
        reasons=(f"digest of {count} alerts",),
        detected_at=now,
    )
