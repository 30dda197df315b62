"""What the service has learned, read back for `storywatch check`.

The stories, learned facts, developments and report counts in the database are restored
into a Tracker by the workers' own `TrackerCache.current`, not by a second copy of it, so
check decides an article exactly as a worker would at this moment.

What this module must not do: write, migrate or take a write lock (the database belongs to
the running service, and check may run beside it), or create a database that is missing;
`worker.store.engine.make_reader_engine` is the only way in.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from worker.decide.tracker import Tracker, TrackerConfig
from worker.pipeline.runtime import TrackerCache
from worker.store.engine import alembic_config, make_reader_engine, sqlite_file
from worker.store.schema import Development, StoryFact, StoryRow


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
    shown = make_url(database_url).render_as_string(hide_password=True)
    path = sqlite_file(database_url)
    if make_url(database_url).get_backend_name() == "sqlite" and path is None:
        return NoKnowledge(shown, "is in memory, out of this command's reach")
    if path is not None and not path.is_file():
        return NoKnowledge(shown, "does not exist")
    engine = make_reader_engine(database_url)
    try:
        with Session(engine) as session:
            return _restore(session, shown, config)
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1]
        return NoKnowledge(shown, f"could not be read ({type(exc).__name__}: {''.join(cause)})")
    finally:
        engine.dispose()


def _restore(session: Session, shown: str, config: TrackerConfig | None) -> Knowledge | NoKnowledge:
    """Everything from one read transaction, so the counts describe the tracker."""
    connection = session.connection()
    revision = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config(connection.engine)).get_current_head()
    if revision is None:
        return NoKnowledge(shown, "has no storywatch schema (`storywatch init` has not run)")
    if revision != head:
        # The service migrates at start; until then its tables may not be what we query.
        return NoKnowledge(
            shown, f"is at schema revision {revision}, not {head} (run `storywatch init`)"
        )
    stories = session.scalar(select(func.count()).select_from(StoryRow)) or 0
    if not stories:
        return NoKnowledge(shown, "has no stories yet")
    tracker = TrackerCache(config).current(session)
    tracked = select(StoryRow.id)
    facts = select(func.count()).where(StoryFact.story_id.in_(tracked))
    developments = select(func.count()).where(Development.story_id.in_(tracked))
    return Knowledge(
        tracker=tracker,
        database=shown,
        stories=stories,
        learned_facts=session.scalar(facts) or 0,
        developments=session.scalar(developments) or 0,
    )
