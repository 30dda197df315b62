"""Bring the database in line with the configuration: feeds from feeds.toml, stories from
the corpus and stories.toml. Runs at `storywatch init` and `storywatch run`.

Stories are rebuilt only when the corpus or the rules change (a fingerprint in `meta`);
facts the stories learned from articles are kept for every story id that survives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from worker.config_files import read_corpus
from worker.errors import ConfigError
from worker.models import CorpusDocument, FeedConfig, Story, StoryRule
from worker.observe.logs import get_logger
from worker.pipeline.runtime import (
    STORIES_VERSION_KEY,
    Runtime,
    story_from_json,
    story_to_json,
)
from worker.settings import Settings
from worker.store.engine import transaction
from worker.store.schema import Feed, Meta, StoryFact, StoryReport, StoryRow
from worker.stories.corpus import build_stories
from worker.stories.rules import routing_problems

log = get_logger(__name__)
FINGERPRINT_KEY = "corpus_fingerprint"


def corpus_fingerprint(
    documents: list[CorpusDocument],
    rules: tuple[StoryRule, ...],
    known_as_of: datetime | None = None,
) -> str:
    digest = hashlib.sha256()
    for document in documents:
        digest.update(document.name.encode() + b"\0" + document.text.encode() + b"\0")
        digest.update(str(document.saved).encode() + b"\0")
    edits = {"rules": [asdict(rule) for rule in rules], "known_as_of": known_as_of}
    digest.update(json.dumps(edits, sort_keys=True, default=str).encode())
    return digest.hexdigest()


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
        row.title = config.title
        row.poll_every_seconds = config.poll_every_seconds
        row.enabled = True
    for row in existing.values():
        row.enabled = False


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


def configured_stories(settings: Settings, documents: list[CorpusDocument]) -> list[Story]:
    """The stories of the corpus with stories.toml applied; raises ConfigError when a rule
    cannot be applied or a destination routes a story id that does not exist."""
    stories = build_stories(documents, settings.story_rules, known_as_of=settings.known_as_of)
    problems = routing_problems(stories, settings.destinations)
    if problems:
        raise ConfigError(problems)
    return stories


def initialise(runtime: Runtime) -> list[Story]:
    """Feeds and stories from the configuration into the database; returns the stories."""
    settings = runtime.settings
    documents = read_corpus(settings.corpus_dir)
    # An undated story is known as of the moment its corpus was first loaded: the first
    # poll of a feed's backlog teaches it what the user already knew instead of flooding
    # them. A story that survives an edit of the corpus keeps that moment (reports seen
    # since were news); stories are written only when the corpus changed (the
    # fingerprint ignores this instant), so a restart keeps it too.
    loaded_at = runtime.clock()
    stories = configured_stories(settings, documents)
    fingerprint = corpus_fingerprint(documents, settings.story_rules, settings.known_as_of)
    with transaction(runtime.sessions) as session:
        first_known = {
            row.id: story_from_json(row.data).known_as_of
            for row in session.scalars(select(StoryRow))
        }
        stories = [
            story
            if story.known_as_of
            else replace(story, known_as_of=first_known.get(story.id) or loaded_at)
            for story in stories
        ]
        sync_feeds(session, settings.feeds)
        rebuilt = sync_stories(session, stories, fingerprint)
    runtime.trackers.invalidate()
    log.info(
        "setup.synced",
        feeds=len(settings.feeds),
        stories=len(stories),
        stories_rebuilt=rebuilt,
        documents=len(documents),
    )
    return stories
