"""Deciding stored items together (`pipeline.decide_ready`): the same decisions as one at
a time, one transaction, and what happens when one of them fails or kills its process.
On PostgreSQL, where the decider takes other untried items with SKIP LOCKED; SQLite
decides the message's item alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import event, select, update

from tests.test_pipeline import FIXTURES, make_runtime
from worker import pipeline
from worker.pipeline import deciding
from worker.pipeline.runtime import Runtime
from worker.store.engine import transaction
from worker.store.schema import Alert, Item

# The fixture feed in its order: a rehash, the development, an unrelated crash, a copy of
# the development from another outlet.
KEYS = (
    "guid:digest-azal-explainer",
    "guid:caspian-azal-final-report",
    "guid:north-cargo-crash-bethel",
    "guid:syndicated-azal-report",
)


def _serve_site(httpserver: HTTPServer) -> None:
    base = httpserver.url_for("").rstrip("/")
    feed = (FIXTURES / "feed.xml").read_text(encoding="utf-8").replace("{base}", base)
    httpserver.expect_request("/feed.xml").respond_with_data(feed)
    pages = {
        "/digest/azal-explainer": "article-rehash.html",
        "/caspian/azal-final-report": "article-development.html",
        "/north/cargo-crash-bethel": "article-offtopic.html",
        "/syndicated/world/2026/11/20/azal-report-russian-missile": "article-development.html",
    }
    for path, name in pages.items():
        page = (FIXTURES / name).read_text(encoding="utf-8")
        httpserver.expect_request(path).respond_with_data(page, content_type="text/html")


def _stored(runtime: Runtime) -> list[int]:
    """The feed's items, polled and stored, waiting for their decisions (in feed order)."""
    ids = list(pipeline.poll_feed(runtime, "local").new_item_ids)
    with transaction(runtime.sessions) as session:
        keys = dict(session.execute(select(Item.id, Item.key).where(Item.id.in_(ids))).all())
    ordered = sorted(ids, key=lambda item_id: KEYS.index(keys[item_id]))
    for item_id in ordered:
        assert isinstance(pipeline.store_item(runtime, item_id), pipeline.Stored)
    return ordered


def _rows(runtime: Runtime) -> dict[str, tuple[str, str | None, int]]:
    with transaction(runtime.sessions) as session:
        rows = session.execute(select(Item.key, Item.status, Item.outcome, Item.attempts))
        return {key: (status, outcome, attempts) for key, status, outcome, attempts in rows}


def _alerts(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        return len(session.scalars(select(Alert.id)).all())


@pytest.fixture
def site(httpserver: HTTPServer) -> HTTPServer:
    _serve_site(httpserver)
    return httpserver


@pytest.fixture
def feed_toml(site: HTTPServer) -> str:
    url = site.url_for("/feed.xml")
    return f'[[feeds]]\nid = "local"\nurl = "{url}"\npoll_every_seconds = 60\n'


@pytest.fixture
def on_postgres(tmp_path: Path, feed_toml: str, postgres_url: str) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path / "pg", feed_toml, database_url=postgres_url)
    yield runtime
    runtime.close()


@pytest.fixture
def one_at_a_time(tmp_path: Path, feed_toml: str) -> Iterator[dict[str, str | None]]:
    """The outcome of each item decided alone, in feed order, on SQLite."""
    runtime = make_runtime(tmp_path / "alone", feed_toml)
    try:
        for item_id in _stored(runtime):
            assert len(pipeline.decide_ready(runtime, item_id)) == 1  # SQLite: alone
        assert _alerts(runtime) == 1
        yield {key: outcome for key, (_, outcome, _) in _rows(runtime).items()}
    finally:
        runtime.close()


def _count_statements(runtime: Runtime) -> list[str]:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(runtime.engine, "before_cursor_execute", seen)
    return statements


@pytest.mark.postgres
def test_items_decided_together_are_decided_as_one_at_a_time(
    on_postgres: Runtime, one_at_a_time: dict[str, str | None]
) -> None:
    runtime = on_postgres
    ordered = _stored(runtime)
    statements = _count_statements(runtime)
    results = pipeline.decide_ready(runtime, ordered[0])
    assert [result.item_id for result in results] == ordered  # its own first, then oldest
    assert {key: outcome for key, (_, outcome, _) in _rows(runtime).items()} == one_at_a_time
    assert [r.outcome for r in results] == [one_at_a_time[key] for key in KEYS]
    assert sum(1 for r in results if r.alert_id) == 1 == _alerts(runtime)
    assert {attempts for _, _, attempts in _rows(runtime).values()} == {1}  # one run each
    decided = len(statements)
    # The others' own messages find them decided here, without a statement.
    for result in results[1:]:
        assert pipeline.decide_ready(runtime, result.item_id) == [result]
    assert len(statements) == decided
    # Remembered once: a later message (a redelivery) reads the database again.
    assert pipeline.decide_ready(runtime, ordered[1])[0].outcome == results[1].outcome
    assert len(statements) > decided
    assert _alerts(runtime) == 1


@pytest.mark.postgres
def test_only_untried_items_are_taken_along(on_postgres: Runtime) -> None:
    """An item with a run counted (its own message started, or it went down with another
    item's decision) is decided by its own message, never taken along again."""
    runtime = on_postgres
    ordered = _stored(runtime)
    with transaction(runtime.sessions) as session:
        session.execute(update(Item).where(Item.id == ordered[2]).values(attempts=1))
    results = pipeline.decide_ready(runtime, ordered[0])
    assert [result.item_id for result in results] == [ordered[0], ordered[1], ordered[3]]
    assert _rows(runtime)[KEYS[2]] == ("new", None, 1)
    assert pipeline.decide_ready(runtime, ordered[2])[0].outcome == "unmatched"
    assert _rows(runtime)[KEYS[2]] == ("done", "unmatched", 2)
    assert _alerts(runtime) == 1


@pytest.mark.postgres
def test_a_failure_among_the_others_leaves_them_to_their_own_messages(
    on_postgres: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision that raises rolls back every decision made with it (the tracker forgets
    what it learned); the message's own item is then decided alone, and the others keep
    one counted run and are decided by their own messages."""
    runtime = on_postgres
    ordered = _stored(runtime)
    decide = deciding._decide_and_record
    failing = {ordered[2]}

    def broken(
        rt: Runtime, session: Any, waiting: Any, article: Any, item_id: int, bound: Any
    ) -> Any:
        if item_id in failing:
            raise ValueError("a bug in one decision")
        return decide(rt, session, waiting, article, item_id, bound)

    monkeypatch.setattr(deciding, "_decide_and_record", broken)
    [alone] = pipeline.decide_ready(runtime, ordered[0])
    assert alone.item_id == ordered[0]
    rows = _rows(runtime)
    assert rows[KEYS[0]][:2] == ("done", alone.outcome)
    assert [rows[key] for key in KEYS[1:]] == [("new", None, 1)] * 3
    assert _alerts(runtime) == 0  # the development decided with the failure is rolled back
    failing.clear()
    outcomes = [pipeline.decide_ready(runtime, item_id)[0].outcome for item_id in ordered[1:]]
    assert outcomes == ["development", "unmatched", "duplicate"]
    assert _alerts(runtime) == 1


@pytest.mark.postgres
def test_a_copy_taken_along_before_its_original_waits_for_its_own_message(
    on_postgres: Runtime,
) -> None:
    """The copy's original is not among the items decided (its run is already counted):
    the copy is left undecided, not failed, and the rest commit."""
    runtime = on_postgres
    ordered = _stored(runtime)
    with transaction(runtime.sessions) as session:
        session.execute(update(Item).where(Item.id == ordered[1]).values(attempts=1))
    results = pipeline.decide_ready(runtime, ordered[0])
    assert [result.item_id for result in results] == [ordered[0], ordered[2]]
    rows = _rows(runtime)
    assert rows[KEYS[3]] == ("new", None, 1)
    assert pipeline.decide_ready(runtime, ordered[1])[0].outcome == "development"
    assert pipeline.decide_ready(runtime, ordered[3])[0].outcome == "duplicate"
    assert _alerts(runtime) == 1


def test_sqlite_decides_the_message_item_alone(tmp_path: Path, feed_toml: str) -> None:
    runtime = make_runtime(tmp_path, feed_toml)
    try:
        ordered = _stored(runtime)
        assert [r.item_id for r in pipeline.decide_ready(runtime, ordered[0])] == [ordered[0]]
        assert _rows(runtime)[KEYS[1]] == ("new", None, 0)
    finally:
        runtime.close()
