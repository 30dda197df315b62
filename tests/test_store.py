"""The schema comes from Alembic migrations, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

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


def _learning_rows(url: str) -> None:
    """The decider's own statements (worker.store.knowledge, worker.store.items) keep their
    meaning on both databases: facts keep learning order and give the last id, a report
    and a change are counted with them, the stories' version and change counts come back
    together, an attempt is counted alone, the item is read with its article and view, and
    its finish records the story and drops the view."""
    from worker.store import decisions, items, knowledge, views  # noqa: PLC0415
    from worker.store.configured import STORIES_VERSION_KEY  # noqa: PLC0415
    from worker.store.engine import autocommit  # noqa: PLC0415
    from worker.store.schema import Article, Meta, PreparedView, StoryRow  # noqa: PLC0415

    engine = make_engine(url)
    migrate(engine)
    sessions = make_sessions(engine)
    moment = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    with transaction(sessions) as session:
        empty = knowledge.stories_state(session)
        assert empty.changes == {}
        assert empty.version == knowledge.stories_version(session)
        session.add_all(
            [StoryRow(id=f"s{n}", title=f"Story {n}", position=n, data={}) for n in (1, 2)]
        )
        session.merge(Meta(key=STORIES_VERSION_KEY, value="v7"))
        session.add(Feed(id="f", url="https://example.org/rss"))
        stored = [
            Article(
                canonical_url=f"https://example.org/{n}",
                text="t",
                extraction="page",
                content_hash=f"h{n}",
            )
            for n in range(3)
        ]
        session.add_all(stored)
        session.flush()
        article, other, unread = (row.id for row in stored)
        item = Item(feed_id="f", key="guid:1", status="new", article_id=article)
        session.add(item)
        session.flush()
        views.put(session, article, b"print", b"{}")
        views.put(session, unread, b"print", b"{}")
        texts = [f"Sentence {n:02d} ends here." for n in range(40)]
        learned = knowledge.learn(session, "s1", article, texts, moment)
        nothing = knowledge.learn(session, "s2", other, [], None)
        assert nothing.last_fact is None and nothing.changes == 1
    with autocommit(sessions) as session:
        decisions.start_decision(session, item.id)
    with transaction(sessions) as session:
        facts = list(knowledge.facts_after(session, {"s1": 0, "s2": 0}))
        assert [fact.text for fact in facts] == texts
        assert [fact.id for fact in facts] == sorted(fact.id for fact in facts)
        assert learned.last_fact == facts[-1].id and learned.changes == 1
        reports = list(knowledge.reports_after(session, {"s1": 0}, with_leads=False))
        assert [(r.id, r.published) for r in reports] == [(learned.report, moment)]
        state = knowledge.stories_state(session)
        assert state == knowledge.StoriesState("v7", {"s1": 1, "s2": 1})
        waiting = decisions.to_decide(session, item.id, 6)
        assert isinstance(waiting, decisions.StoredItem)
        assert waiting.article.id == article and waiting.view == (b"print", b"{}")
        assert session.get(Item, item.id).attempts == 1  # type: ignore[union-attr]
        decisions.finish_decisions(
            session, [decisions.Decided(item.id, "rehash", article, story_id="s1", score=0.5)]
        )
    with transaction(sessions) as session:
        finished = session.get(Item, item.id)
        assert finished is not None and finished.processed_at is not None
        assert (finished.status, finished.outcome) == ("done", "rehash")
        decided = session.get(Article, article)
        assert decided is not None and (decided.story_id, decided.score) == ("s1", 0.5)
        left = session.scalars(select(PreparedView.article_id)).all()
        assert left == [unread]  # the decided article's view is dropped, no other
        assert isinstance(decisions.to_decide(session, item.id, 6), items.Settled)
    engine.dispose()


def test_learning_rows_on_sqlite(tmp_path: Path) -> None:
    _learning_rows(f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.mark.postgres
def test_learning_rows_on_postgres(postgres_url: str) -> None:
    _learning_rows(postgres_url)


def _backend_pid(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        pid: int = session.execute(text("select pg_backend_pid()")).scalar_one()
    return pid


def _terminate(url: str, pid: int) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


@pytest.mark.postgres
def test_a_pooled_connection_idle_past_the_window_is_pinged_and_replaced(
    postgres_url: str,
) -> None:
    """A connection that died while idle in the pool (PostgreSQL restarted, a proxy cut
    it) is found by the ping at checkout and replaced: the transaction does not fail."""
    engine = make_engine(postgres_url, alive_without_ping=0.2)
    sessions = make_sessions(engine)
    dead = _backend_pid(sessions)
    _terminate(postgres_url, dead)
    time.sleep(0.4)
    assert _backend_pid(sessions) != dead
    engine.dispose()


@pytest.mark.postgres
def test_a_pooled_connection_used_within_the_window_is_not_pinged(postgres_url: str) -> None:
    """Within the window a checkout costs no round trip, so a connection that died in it
    fails its first statement (OperationalError, which every task retries); the pool then
    drops it and the next transaction runs on a new one."""
    engine = make_engine(postgres_url, alive_without_ping=60)
    sessions = make_sessions(engine)
    dead = _backend_pid(sessions)
    _terminate(postgres_url, dead)
    with pytest.raises(OperationalError):
        _backend_pid(sessions)
    assert _backend_pid(sessions) != dead
    engine.dispose()


@pytest.mark.postgres
def test_a_ping_that_finds_the_server_gone_drops_every_pooled_connection(
    postgres_url: str,
) -> None:
    """After a restart every pooled connection is dead. The first checkout past the
    window pings and finds that out; the pool then drops the others too (as pre-ping
    does), so one used within the window is not handed out to fail."""
    engine = make_engine(postgres_url, alive_without_ping=0.3)
    sessions = make_sessions(engine)
    older, newer = sessions(), sessions()
    pids = [
        session.execute(text("select pg_backend_pid()")).scalar_one() for session in (older, newer)
    ]
    older.close()  # back in the pool first: idle the longest
    time.sleep(0.5)
    newer.close()
    for pid in pids:  # both back in the pool now, the newer one just used
        _terminate(postgres_url, pid)
    assert _backend_pid(sessions) not in pids  # the older one, pinged: the pool dropped
    assert _backend_pid(sessions) not in pids  # the newer one is gone with it
    engine.dispose()
