"""The configuration written into the database at start: feeds from feeds.toml and the
stories built from the corpus, and what the stories already stored say (so a restart
keeps the moment an undated story became known).

Each function runs inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from worker.models import FeedConfig, Story
from worker.store.feeds import drop_held, stop_polling
from worker.store.schema import Feed, Meta, StoryFact, StoryReport, StoryRow
from worker.stories.stored import story_from_json, story_to_json

FINGERPRINT_KEY = "corpus_fingerprint"
# Changes whenever the stories are rebuilt: every worker's tracker cache reloads then.
STORIES_VERSION_KEY = "stories_version"


def known_as_of(session: Session) -> dict[str, datetime | None]:
    """Each stored story's known_as_of, by story id."""
    return {
        row.id: story_from_json(row.data).known_as_of for row in session.scalars(select(StoryRow))
    }


def sync_feeds(session: Session, feeds: tuple[FeedConfig, ...]) -> None:
    """Upsert configured feeds; disable feeds that left the configuration (keep history)."""
    existing = {feed.id: feed for feed in session.scalars(select(Feed))}
    for config in feeds:
        row = existing.pop(config.id, None)
        if row is None:
            session.add(
                Feed(
                    id=config.id,
                    url=config.url,
                    title=config.title,
                    poll_every_seconds=config.poll_every_seconds,
                    enabled=True,
                )
            )
            continue
        if row.url != config.url:
            # A new URL is a new resource: its validators and body hash do not apply.
            row.url, row.etag, row.last_modified, row.body_hash = config.url, None, None, None
            # ...and what the old one answered (moved, gone, listed) says nothing about it.
            row.moved_to, row.stopped, row.not_found_streak = None, None, 0
            if row.held_items:
                drop_held(session, row.id)
        row.title = config.title
        row.poll_every_seconds = config.poll_every_seconds
        row.enabled = True
    for row in existing.values():
        if row.origin == "config":  # a feed added on the desk is not feeds.toml's to drop
            stop_polling(session, row)


def sync_stories(session: Session, stories: list[Story], fingerprint: str) -> bool:
    """Replace the stories when the corpus changed. Returns True when they were rebuilt."""
    current = session.get(Meta, FINGERPRINT_KEY)
    if current is not None and current.value == fingerprint:
        return False
    keep = {story.id for story in stories}
    for row in session.scalars(select(StoryRow)):
        if row.id not in keep:
            session.execute(delete(StoryFact).where(StoryFact.story_id == row.id))
            session.execute(delete(StoryReport).where(StoryReport.story_id == row.id))
            session.delete(row)
    session.flush()
    for position, story in enumerate(stories):
        existing = session.get(StoryRow, story.id)
        if existing is None:
            session.add(
                StoryRow(
                    id=story.id, title=story.title, position=position, data=story_to_json(story)
                )
            )
        else:
            existing.title, existing.position = story.title, position
            existing.data = story_to_json(story)
    _set_meta(session, FINGERPRINT_KEY, fingerprint)
    _set_meta(session, STORIES_VERSION_KEY, fingerprint[:16])
    return True


def _set_meta(session: Session, key: str, value: str) -> None:
    row = session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=value))
    else:
        row.value = value
