"""The outbox: a development, its alert and the alert's deliveries, written in the same
transaction as the article that made them.

What this module is for: turning a decision that found a new development into rows the
delivery task works from (transactional outbox): nothing is sent here, so a crash before
the commit loses nothing and sends nothing, and a committed alert is always delivered.
Digest destinations get their delivery due at the next slot; `route` says which
destinations a story's alerts go to.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from worker.alerts.digest import next_digest_time
from worker.alerts.payloads import alert_id
from worker.alerts.stored import alert_to_json
from worker.models import CONSOLE, AlertContent, Decision, DestinationConfig, Story
from worker.pipeline.runtime import Runtime
from worker.store import schema
from worker.store.schema import Delivery, Development


def record_development(
    runtime: Runtime,
    session: Session,
    row: schema.Article,
    decision: Decision,
    story: Story | None,
) -> str:
    """The development, its alert and one pending delivery per routed destination, in the
    caller's transaction; returns the alert id."""
    assert decision.match is not None and decision.novelty is not None
    now = runtime.clock()
    reasons = (*decision.match.reasons, *decision.novelty.reasons)
    development = Development(
        story_id=decision.match.story_id,
        article_id=row.id,
        new_facts=list(decision.novelty.new_facts),
        score=decision.match.score,
        reasons=list(reasons),
        detected_at=now,
        specifics=list(decision.specifics),
        surge=decision.surge,
    )
    runtime.trackers.add_development(session, development)
    ident = alert_id(decision.match.story_id, f"development:{development.id}:{row.canonical_url}")
    content = AlertContent(
        id=ident,
        story_id=decision.match.story_id,
        story_title=story.title if story else decision.match.story_id,
        article_url=row.url,
        article_title=row.title,
        source=row.source,
        published=row.published,
        new_facts=decision.novelty.new_facts,
        score=decision.match.score,
        reasons=reasons,
        detected_at=now,
    )
    session.add(
        schema.Alert(
            id=ident,
            development_id=development.id,
            story_id=decision.match.story_id,
            content=alert_to_json(content),
            created_at=now,
        )
    )
    session.flush()
    digests = {
        d.id: d.digest_every_minutes
        for d in runtime.settings.destinations
        if d.digest_every_minutes
    }
    for destination in route(story, decision.match.story_id, runtime.settings.destinations):
        minutes = digests.get(destination)
        due = next_digest_time(now, minutes) if minutes else now  # digests wait for their slot
        session.add(
            Delivery(
                alert_id=ident, destination_id=destination, status="pending", next_attempt_at=due
            )
        )
    return ident


def route(
    story: Story | None, story_id: str, destinations: tuple[DestinationConfig, ...]
) -> list[str]:
    """Destination ids for a story's alerts.

    1. No destination configured: the console.
    2. The story names destinations (stories.toml): exactly those.
    3. Otherwise every destination whose `stories` list is absent or includes the story.
    """
    if not destinations:
        return [CONSOLE.id]
    if story is not None and story.destinations is not None:
        return list(dict.fromkeys(story.destinations))  # one delivery per destination
    return [d.id for d in destinations if d.stories is None or story_id in d.stories]
