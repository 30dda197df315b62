"""Write alerts straight into the outbox: the input contract of delivery tests."""

from __future__ import annotations

from worker.alerts.payloads import alert_id
from worker.alerts.stored import alert_to_json
from worker.models import AlertContent
from worker.pipeline.runtime import Runtime
from worker.store import schema
from worker.store.engine import transaction


def add_alerts(runtime: Runtime, count: int, destination: str) -> list[str]:
    """`count` alerts in the outbox, each with one pending delivery to `destination`."""
    now = runtime.clock()
    ids: list[str] = []
    with transaction(runtime.sessions) as session:
        for n in range(count):
            article = schema.Article(
                canonical_url=f"https://news.example/{n}",
                text=f"text {n}",
                extraction="page",
                content_hash=f"{n:064d}",
            )
            session.add(article)
            session.flush()
            development = schema.Development(
                story_id="s",
                article_id=article.id,
                new_facts=["fact"],
                score=0.5,
                reasons=[],
                detected_at=now,
            )
            session.add(development)
            session.flush()
            ident = alert_id("s", f"development:{development.id}")
            content = AlertContent(
                id=ident,
                story_id="s",
                story_title="Story",
                article_url=article.canonical_url,
                article_title=f"Article {n}",
                source="Example",
                published=None,
                new_facts=("A new fact with 3 numbers.",),
                score=0.5,
                reasons=("why",),
                detected_at=now,
            )
            session.add(
                schema.Alert(
                    id=ident,
                    development_id=development.id,
                    story_id="s",
                    content=alert_to_json(content),
                    created_at=now,
                )
            )
            session.flush()
            session.add(
                schema.Delivery(
                    alert_id=ident,
                    destination_id=destination,
                    status="pending",
                    next_attempt_at=now,
                )
            )
            ids.append(ident)
    return ids
