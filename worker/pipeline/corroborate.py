"""Record later reports of an alerted development on it, instead of alerting again.

Two ways an article reports a development already alerted:
1. a copy: the same text under another URL (exact or near duplicate of its article);
2. a rewrite: another outlet's own article that the tracker finds repeating the specifics
   of one of the story's recent developments (worker.decide.repeats, `Decision.repeats`).
Either way the article is recorded as a source of that development, and the alert's
`also_reported_by` counts the distinct other outlets, so deliveries still waiting (and
`storywatch alerts list`) show it. Recipients the alert already reached hear of it once:
its follow-up (a `story.development.updated` webhook, a Slack message) goes out
FOLLOW_UP_AFTER the first later report, with the count and links recorded by then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.models import CONSOLE, DestinationConfig
from worker.observe.logs import get_logger
from worker.store import developments, feedback, outbox
from worker.store.articles import StoredArticle
from worker.store.engine import DbSession

# Later reports come in a wave (syndicated copies within the hour, rewrites over the day):
# the follow-up waits this long after the first, so one message carries most of them.
FOLLOW_UP_AFTER = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class FollowUps:
    """Who gets an alert's follow-up, and when it is due if it is scheduled now."""

    destinations: frozenset[str]
    due: datetime
    now: datetime


def follow_ups(destinations: tuple[DestinationConfig, ...], now: datetime) -> FollowUps:
    """Every destination that did not opt out (`updates = false`) and sends alerts one by
    one (a digest's next message already says what came later); the console too when it
    is not configured (alerts go there when no destination is), since nothing opted it
    out."""
    opted_in = {d.id for d in destinations if d.updates and not d.digest_every_minutes}
    if all(d.id != CONSOLE.id for d in destinations):
        opted_in.add(CONSOLE.id)
    return FollowUps(frozenset(opted_in), now + FOLLOW_UP_AFTER, now)


log = get_logger(__name__)


def record_copy(
    session: DbSession, article: StoredArticle, original_id: int, updates: FollowUps
) -> int | None:
    """The article copies `original_id`: record it on the development that article made,
    or, when that article was itself a later report of a development (another outlet's
    version got processed first), on that development."""
    development_id = developments.made_or_reported_by(session, original_id)
    if development_id is None:
        return None
    _record(session, development_id, article, "copy", updates)
    return development_id


def record_repeat(
    session: DbSession,
    article: StoredArticle,
    story_id: str,
    development_key: str,
    updates: FollowUps,
) -> int | None:
    """The tracker found that the article reports again the development it names by its
    article id (`Decision.repeats`): record the article on that development."""
    if not development_key.isdigit():
        return None
    development_id = developments.made_by(session, story_id, int(development_key))
    if development_id is None:
        return None
    _record(session, development_id, article, "rewrite", updates)
    return development_id


def _record(
    session: DbSession,
    development_id: int,
    article: StoredArticle,
    how: str,
    updates: FollowUps,
) -> None:
    developments.add_source(session, development_id, article, how)
    others = developments.recount_sources(session, development_id)
    # A muted story sends nothing, follow-ups included; the count is still recorded.
    story_id = developments.story_of(session, development_id)
    if others and not (story_id and feedback.muted(session, story_id, updates.now)):
        outbox.schedule_updates(session, development_id, updates.destinations, updates.due)
    log.info(
        "development.also_reported",
        development_id=development_id,
        article_id=article.id,
        source=article.source,
        how=how,
        also_reported_by=others,
    )
