"""Reading the service's database from outside the service (`storywatch check`): one
read-only snapshot, and what it says about itself (its schema revision, what the
stories have learned). Never writes, migrates, takes a write lock or creates a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from worker.store.engine import (
    alembic_config,
    database_reason,
    make_reader_engine,
    sqlite_file,
)
from worker.store.schema import Development, StoryFact, StoryRow


@dataclass(frozen=True, slots=True)
class SchemaState:
    revision: str | None  # None: no storywatch schema
    head: str  # the revision this code expects


@dataclass(frozen=True, slots=True)
class Learned:
    stories: int
    facts: int  # learned fact sentences of tracked stories
    developments: int


def shown(database_url: str) -> str:
    """The URL as it may be printed: its password hidden."""
    return make_url(database_url).render_as_string(hide_password=True)


def unreachable(database_url: str) -> str | None:
    """Why a reader cannot open the database at all, or None: an in-memory SQLite
    database lives in another process, and a missing file must not be created."""
    path = sqlite_file(database_url)
    if make_url(database_url).get_backend_name() == "sqlite" and path is None:
        return "is in memory, out of this command's reach"
    if path is not None and not path.is_file():
        return "does not exist"
    return None


@contextmanager
def snapshot(database_url: str) -> Iterator[Session]:
    """One read-only session on its own unpooled engine, disposed of afterwards."""
    engine = make_reader_engine(database_url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def schema_state(session: Session) -> SchemaState:
    connection = session.connection()
    revision = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config(connection.engine)).get_current_head()
    return SchemaState(revision, str(head))


def not_ready(database_url: str) -> str | None:
    """Why a command that works on the service's data cannot start on this database (it
    is missing, or not at this code's schema revision), or None."""
    problem = unreachable(database_url)
    if problem is not None:
        return problem
    try:
        with snapshot(database_url) as session:
            state = schema_state(session)
    except (OperationalError, DatabaseError) as exc:  # not there, refused, not a database
        reason = database_reason(exc)
        return f"cannot be opened ({reason})"
    if state.revision != state.head:
        return f"is at schema revision {state.revision}, not {state.head}"
    return None


def learned(session: Session) -> Learned:
    """How many stories there are, and what the tracked ones have learned."""
    tracked = select(StoryRow.id)
    return Learned(
        stories=session.scalar(select(func.count()).select_from(StoryRow)) or 0,
        facts=session.scalar(select(func.count()).where(StoryFact.story_id.in_(tracked))) or 0,
        developments=session.scalar(select(func.count()).where(Development.story_id.in_(tracked)))
        or 0,
    )
