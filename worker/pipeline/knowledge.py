"""What the service has learned, read back for `storywatch check`.

The stories, learned facts, developments and report counts in the database are restored
into a Tracker by the workers' own `TrackerCache.current`, not by a second copy of it, so
check decides an article exactly as a worker would at this moment.

What this module must not do: write, migrate or take a write lock (the database belongs to
the running service, and check may run beside it), or create a database that is missing;
`worker.store.reader` is the only way in.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from worker.decide.tracker import Tracker, TrackerConfig
from worker.pipeline.tracking import TrackerCache
from worker.store import reader


@dataclass(frozen=True, slots=True)
class Knowledge:
    """The tracker as the service's database holds it, and what it was made of."""

    tracker: Tracker
    database: str  # the URL with its password hidden
    stories: int
    learned_facts: int
    developments: int


@dataclass(frozen=True, slots=True)
class NoKnowledge:
    """Why the database has nothing to answer from (the caller falls back to the corpus)."""

    database: str
    reason: str


def restore_knowledge(
    database_url: str, config: TrackerConfig | None = None
) -> Knowledge | NoKnowledge:
    """The service's tracker restored read-only from `database_url`, or why it cannot be."""
    shown = reader.shown(database_url)
    why_not = reader.unreachable(database_url)
    if why_not is not None:
        return NoKnowledge(shown, why_not)
    try:
        # Everything from one read transaction, so the counts describe the tracker.
        with reader.snapshot(database_url) as session:
            state = reader.schema_state(session)
            if state.revision is None:
                return NoKnowledge(
                    shown, "has no storywatch schema (`storywatch init` has not run)"
                )
            if state.revision != state.head:
                # The service migrates at start; until then its tables may not be what we
                # query.
                return NoKnowledge(
                    shown,
                    f"is at schema revision {state.revision}, not {state.head} "
                    "(run `storywatch init`)",
                )
            counts = reader.learned(session)
            if not counts.stories:
                return NoKnowledge(shown, "has no stories yet")
            tracker = TrackerCache(config).current(session)
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1]
        return NoKnowledge(shown, f"could not be read ({type(exc).__name__}: {''.join(cause)})")
    return Knowledge(
        tracker=tracker,
        database=shown,
        stories=counts.stories,
        learned_facts=counts.facts,
        developments=counts.developments,
    )
