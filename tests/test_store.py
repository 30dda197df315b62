"""The schema comes from Alembic migrations, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError, OperationalError

from worker.store.engine import make_engine, make_sessions, migrate, transaction
from worker.store.schema import Base, Feed, Item

TABLES = {t.name for t in Base.metadata.sorted_tables}


def _exercise(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    migrate(engine)  # idempotent: a second start changes nothing
    assert set(inspect(engine).get_table_names()) >= TABLES
    sessions = make_sessions(engine)
    moment = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    with transaction(sessions) as session:
        session.add(Feed(id="f", url="https://example.org/rss", next_check_at=moment))
        session.add(Item(feed_id="f", key="guid:1", status="new"))
    with transaction(sessions) as session:
        feed = session.get(Feed, "f")
        assert feed is not None and feed.next_check_at == moment
        assert feed.next_check_at.tzinfo is not None
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        session.add(Item(feed_id="f", key="guid:1", status="new"))
    engine.dispose()


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    _exercise(f"sqlite:///{tmp_path / 'db.sqlite'}")


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


@pytest.mark.postgres
def test_migrations_on_postgres(postgres_url: str) -> None:
    _exercise(postgres_url)


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    """A schema change without a migration fails here, not in production."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.migration import MigrationContext  # noqa: PLC0415

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def _held_story_lock_times_out(url: str) -> None:
    """A story's lock held by another session (a frozen worker): the next decision about
    that story gives up after the lock timeout and the task's retry table retries it."""
    import time  # noqa: PLC0415

    from worker.pipeline.retries import item_retry  # noqa: PLC0415
    from worker.settings import Settings  # noqa: PLC0415
    from worker.store import knowledge  # noqa: PLC0415
    from worker.store.schema import StoryRow  # noqa: PLC0415

    engine = make_engine(url, lock_timeout=0.5)
    migrate(engine)
    sessions = make_sessions(engine)
    with transaction(sessions) as session:
        session.add(StoryRow(id="s", title="S", position=0, data={}))
    frozen = sessions()
    frozen.begin()
    try:
        assert knowledge.lock_story(frozen, "s")  # on SQLite, BEGIN IMMEDIATE: the write lock
        started = time.monotonic()
        with pytest.raises(OperationalError) as caught, transaction(sessions) as session:
            knowledge.lock_story(session, "s")
        waited = time.monotonic() - started
    finally:
        frozen.rollback()
        frozen.close()
    assert 0.4 <= waited < 5
    settings = Settings(config_dir=Path("."), data_dir=Path("."), database_url=url)
    planned = item_retry(caught.value, 1, settings)
    assert planned is not None and planned[0].event == "item.retry_database"
    engine.dispose()


def test_a_held_lock_times_out_into_a_retry_on_sqlite(tmp_path: Path) -> None:
    _held_story_lock_times_out(f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.mark.postgres
def test_a_held_lock_times_out_into_a_retry_on_postgres(postgres_url: str) -> None:
    _held_story_lock_times_out(postgres_url)
