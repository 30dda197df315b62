"""Open a database and bring its schema to the latest Alembic revision.

SQLite runs in WAL mode and every transaction starts with BEGIN IMMEDIATE: writers are
serialized up front (waiting on the busy timeout) instead of failing when a read
transaction later tries to write, which is what makes "is this new for story S" safe when
two workers decide at once. PostgreSQL uses row locks (`SELECT ... FOR UPDATE`) instead.

`make_reader_engine` is the other way in, for a command that reads beside the running
service (`storywatch check`): no statement of it can write, it takes no write lock to
read, and it never creates a missing database.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

# The handle a use case passes to the store's query functions: it names the transaction
# without the use case touching SQLAlchemy itself.
DbSession = Session
DbEngine = Engine
DbSessions = sessionmaker[Session]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


# How long a statement may wait for a lock (a story's row, SQLite's write lock) before it
# fails with OperationalError, which every task turns into a retry: a frozen worker holding
# a story must not stall everyone deciding about it.
DEFAULT_LOCK_TIMEOUT_SECONDS = 10.0
# On PostgreSQL: the longest one statement may run, and the longest a session may sit
# idle inside a transaction (a worker frozen mid-transaction loses it, and its locks).
STATEMENT_TIMEOUT_SECONDS = 120
IDLE_IN_TRANSACTION_SECONDS = 300
# A pooled connection back in the pool for less than this is taken as alive without a
# ping (HikariCP's "alive bypass window" is 500 ms): the decider runs two short
# transactions an item, and a ping before each was a fifth of its round trips. One that
# died within the window fails its first statement with OperationalError (an item task
# retries it, worker.pipeline.retries; a poll or a delivery comes round again with the
# scheduler's tick; the desk answers 500 once), and SQLAlchemy then drops the pool.
ALIVE_WITHOUT_PING_SECONDS = 1.0
_USED_AT = "storywatch_used_at"  # ConnectionPoolEntry.info key


def make_engine(
    url: str,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    alive_without_ping: float = ALIVE_WITHOUT_PING_SECONDS,
) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        options = (
            f"-c lock_timeout={int(lock_timeout * 1000)}"
            f" -c statement_timeout={STATEMENT_TIMEOUT_SECONDS * 1000}"
            f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_SECONDS * 1000}"
        )
        engine = create_engine(url, future=True, connect_args={"options": options})
        _ping_when_idle(engine, alive_without_ping)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": lock_timeout}, future=True)
    busy_ms = int(lock_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE below is honoured
        # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _ping_when_idle(engine: Engine, window: float) -> None:
    """Pessimistic disconnect handling (SQLAlchemy's `pool_pre_ping`), skipped for a
    connection used in the last `window` seconds. A failed ping makes the pool drop the
    connection and check out another (DisconnectionError, the pool's documented retry),
    and a ping that found the server gone drops every pooled connection, as pre-ping
    does (InvalidatePoolError): they all date from before the restart."""

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_USED_AT] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_USED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        used_at = record.info.get(_USED_AT)
        if used_at is not None and time.monotonic() - used_at < window:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)  # pool_pre_ping's own ping
        except Exception as exc:  # any failure of a ping means "use another connection"
            message = f"pooled connection failed its ping: {exc}"
            dbapi_error = engine.dialect.loaded_dbapi.Error
            if isinstance(exc, dbapi_error) and engine.dialect.is_disconnect(
                exc, dbapi_connection, None
            ):
                raise InvalidatePoolError(message) from exc
            raise DisconnectionError(message) from exc


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and for an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in {None, "", ":memory:"}:
        return None
    return Path(str(parsed.database)).resolve()


def make_reader_engine(url: str, *, pooled: bool = False) -> Engine:
    """An engine that can only read, each transaction one consistent snapshot; unpooled
    unless `pooled` (PostgreSQL only: a long-lived reader such as the story desk keeps
    its connections instead of opening one per request).

    1. SQLite opens the file with `mode=rw` (SQLite docs, "URI filenames": a missing file
       is an error instead of a new empty database) and `PRAGMA query_only` (no statement
       can write). Not `mode=ro`: a read-only last connection cannot remove the -wal and
       -shm files it opened, and would leave them behind, owned by whoever ran the command.
       (As with any SQLite connection, the last one to close checkpoints the WAL: committed
       pages move into the file, the data does not change.)
       A plain BEGIN (deferred) takes no write lock; in WAL mode readers and writers do not
       block each other (SQLite docs, "WAL"), so the workers never wait on the reader.
    2. PostgreSQL runs every transaction READ ONLY at REPEATABLE READ, and gives up on a
       lock after 5 s rather than queue behind the service's migrations.
    """
    path = sqlite_file(url)
    if make_url(url).get_backend_name() != "sqlite":
        options = "-c default_transaction_read_only=on -c lock_timeout=5s"
        return create_engine(
            url,
            isolation_level="REPEATABLE READ",
            connect_args={"options": options, "connect_timeout": 5},
            **({"pool_pre_ping": True} if pooled else {"poolclass": NullPool}),
        )
    if path is None:
        raise ValueError(f"{url}: an in-memory SQLite database cannot be read from outside")
    uri = f"file:{quote(str(path))}?mode=rw"

    def _connect() -> sqlite3.Connection:
        # isolation_level=None: pysqlite leaves transactions to the BEGIN below.
        connection = sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None)
        connection.execute("PRAGMA query_only = ON")
        return connection

    engine = create_engine("sqlite://", creator=_connect, poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with sessions() as session, session.begin():
        yield session


@contextmanager
def autocommit(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One statement that commits alone: on PostgreSQL without a transaction around it
    (no BEGIN and COMMIT round trips: two of its three); elsewhere a `transaction`."""
    with sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            with session.begin():
                yield session
            return
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
        session.commit()  # ends the session's bookkeeping: the statement committed alone


def insert_missing(session: Session, table: type[Any], **values: Any) -> None:
    """Insert the row unless one with its primary key exists, without failing when another
    transaction inserts it at the same moment: a plain get-then-add would raise a unique
    violation in one of two workers and roll back everything else it had recorded."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql_insert(table).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())
    else:
        raise NotImplementedError(f"storywatch supports PostgreSQL and SQLite, not {dialect}")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the latest revision (safe to run on every start)."""
    command.upgrade(alembic_config(engine), "head")


def database_reason(exc: DBAPIError) -> str:
    """The driver's first line about why a database refused (no traceback, no URL)."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
