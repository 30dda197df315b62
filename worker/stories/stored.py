"""A story as the store keeps it: JSON written when the corpus is loaded, read back by
every worker (and by `storywatch check`) as the same `Story` value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worker.models import Story


def story_to_json(story: Story) -> dict[str, Any]:
    return {
        "id": story.id,
        "title": story.title,
        "key_terms": list(story.key_terms),
        "documents": list(story.documents),
        "facts": list(story.facts),
        "keywords": list(story.keywords),
        "exclude": list(story.exclude),
        "destinations": None if story.destinations is None else list(story.destinations),
        "known_as_of": story.known_as_of.isoformat() if story.known_as_of else None,
    }


def story_from_json(data: dict[str, Any]) -> Story:
    destinations = data.get("destinations")
    known_as_of = data.get("known_as_of")
    return Story(
        id=data["id"],
        title=data["title"],
        key_terms=tuple(data.get("key_terms", ())),
        documents=tuple(data.get("documents", ())),
        facts=tuple(data.get("facts", ())),
        keywords=tuple(data.get("keywords", ())),
        exclude=tuple(data.get("exclude", ())),
        destinations=None if destinations is None else tuple(destinations),
        known_as_of=datetime.fromisoformat(known_as_of) if known_as_of else None,
    )
