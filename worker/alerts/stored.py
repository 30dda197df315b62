"""The alert as the outbox stores it: one `AlertContent`, written as JSON when the alert is
created and read back, the same value, by every delivery and report of it.

Changing a stored alert (another outlet reported its development) reads the value,
replaces a field and writes it back: never a dict patched by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worker.alerts.payloads import iso_utc
from worker.models import AlertContent


def alert_to_json(alert: AlertContent) -> dict[str, Any]:
    return {
        "id": alert.id,
        "story_id": alert.story_id,
        "story_title": alert.story_title,
        "article_url": alert.article_url,
        "article_title": alert.article_title,
        "source": alert.source,
        "published": iso_utc(alert.published),
        "new_facts": list(alert.new_facts),
        "score": alert.score,
        "reasons": list(alert.reasons),
        "detected_at": iso_utc(alert.detected_at),
        "also_reported_by": alert.also_reported_by,
    }


def alert_from_json(data: dict[str, Any]) -> AlertContent:
    def moment(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

    detected = moment(data.get("detected_at"))
    assert detected is not None
    return AlertContent(
        id=data["id"],
        story_id=data["story_id"],
        story_title=data["story_title"],
        article_url=data.get("article_url"),
        article_title=data.get("article_title"),
        source=data.get("source"),
        published=moment(data.get("published")),
        new_facts=tuple(data.get("new_facts", ())),
        score=float(data.get("score", 0.0)),
        reasons=tuple(data.get("reasons", ())),
        detected_at=detected,
        also_reported_by=int(data.get("also_reported_by", 0)),
    )
