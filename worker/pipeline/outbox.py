"""The outbox: a development, its alert and the alert's deliveries, written in the same
transaction as the article that made them.

What this module is for: turning a decision that found a new development into rows the
delivery task works from (transactional outbox): nothing is sent here, so a crash before
the commit loses nothing and sends nothing, and a committed alert is always delivered.
Digest destinations get their delivery due at the next slot; `route` says which
destinations a story's alerts go to.
"""

from __future__ import annotations

from worker.alerts.digest import next_digest_time
from worker.alerts.payloads import alert_id
from worker.models import CONSOLE, AlertContent, Decision, DestinationConfig, Story
from worker.pipeline.runtime import Runtime
from worker.store import feedback, outbox
from worker.store.articles import StoredArticle
from worker.store.engine import DbSession


def record_development(
    runtime: Runtime,
    session: DbSession,
    article: StoredArticle,
    decision: Decision,
    story: Story | None,
) -> str:
    """The development, its alert and one pending delivery per routed destination (none
    while the story is muted), in the caller's transaction; returns the alert id."""
    assert decision.match is not None and decision.novelty is not None
    now = runtime.clock()
    reasons = (*decision.match.reasons, *decision.novelty.reasons)
    development_id = runtime.trackers.add_development(session, decision, article.id, now)
    ident = alert_id(
        decision.match.story_id, f"development:{development_id}:{article.canonical_url}"
    )
    content = AlertContent(
        id=ident,
        story_id=decision.match.story_id,
        story_title=story.title if story else decision.match.story_id,
        article_url=article.url,
        article_title=article.title,
        source=article.source,
        published=article.published,
        new_facts=decision.novelty.new_facts,
        score=decision.match.score,
        reasons=reasons,
        detected_at=now,
    )
    outbox.add_alert(session, content, development_id=development_id, created_at=now)
    if feedback.muted(session, decision.match.story_id, now):
        # Muted on the desk or with `storywatch mute`: the development and its alert are
        # recorded (the desk shows them), but nothing is sent.
        return ident
    digests = {
        d.id: d.digest_every_minutes
        for d in runtime.settings.destinations
        if d.digest_every_minutes
    }
    for destination in route(story, decision.match.story_id, runtime.settings.destinations):
        minutes = digests.get(destination)
        due = next_digest_time(now, minutes) if minutes else now  # digests wait for their slot
        outbox.add_delivery(session, ident, destination, due)
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
