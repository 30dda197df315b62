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

from worker.errors import ConfigError
from worker.models import CorpusDocument, Story, StoryRule
from worker.observe.logs import get_logger
from worker.pipeline.runtime import Runtime
from worker.settings import Settings
from worker.store import configured
from worker.store.engine import transaction
from worker.stories.corpus import build_stories
from worker.stories.folder import read_corpus
from worker.stories.rules import routing_problems

log = get_logger(__name__)


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


def configured_stories(settings: Settings, documents: list[CorpusDocument]) -> list[Story]:
    """The stories of the corpus with stories.toml applied; raises ConfigError when a rule
    cannot be applied or a destination routes a story id that does not exist."""
    stories = build_stories(documents, settings.story_rules, known_as_of=settings.known_as_of)
    if not stories:
        # A service with no story could never alert: say so instead of running silently.
        raise ConfigError(
            [f"{settings.corpus_dir}: the corpus builds no story; add articles about each story"]
        )
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
        first_known = configured.known_as_of(session)
        stories = [
            story
            if story.known_as_of
            else replace(story, known_as_of=first_known.get(story.id) or loaded_at)
            for story in stories
        ]
        configured.sync_feeds(session, settings.feeds)
        rebuilt = configured.sync_stories(session, stories, fingerprint)
    runtime.trackers.invalidate()
    log.info(
        "setup.synced",
        feeds=len(settings.feeds),
        stories=len(stories),
        stories_rebuilt=rebuilt,
        documents=len(documents),
    )
    return stories
