"""The schema comes from Alembic migrations, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

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
