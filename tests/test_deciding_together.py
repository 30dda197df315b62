"""Deciding stored items together (`pipeline.decide_ready`): the same decisions as one at
a time, one transaction, and what happens when one of them fails or kills its process.
On PostgreSQL, where the decider takes other untried items with SKIP LOCKED; SQLite
decides the message's item alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, event, func, select, text, update
from structlog.testing import capture_logs

from tests.test_pipeline import FIXTURES, make_runtime
from worker import pipeline
from worker.observe import metrics
from worker.pipeline import deciding
from worker.pipeline.runtime import Runtime
from worker.store import decisions
from worker.store.engine import transaction
from worker.store.schema import Alert, DevelopmentSource, Item, StoryReport

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


def _reports(runtime: Runtime) -> list[tuple[str, str | None]]:
    """Each report a story counted (what a surge counts), by the item's key."""
    with transaction(runtime.sessions) as session:
        rows = session.execute(
            select(StoryReport.story_id, Item.key).join(
                Item, Item.article_id == StoryReport.article_id
            )
        )
        return sorted((story, key) for story, key in rows)


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
    # A decision that waited for a lock it must not wait for fails after 3 s (and is
    # then decided alone), instead of passing after the default 10.
    runtime = make_runtime(
        tmp_path / "pg",
        feed_toml,
        database_url=postgres_url,
        STORYWATCH_DB_LOCK_TIMEOUT_SECONDS="3",
    )
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
        assert len(_reports(runtime)) == 3  # the development, its rehash and its copy
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
    batches = metrics.PIPELINE.get_sample_value("storywatch_decide_batch_items_count") or 0.0
    settled = metrics.PIPELINE.get_sample_value("storywatch_decide_batch_items_sum") or 0.0
    results = pipeline.decide_ready(runtime, ordered[0])
    # One transaction settled four items (the metric operators see).
    assert metrics.PIPELINE.get_sample_value("storywatch_decide_batch_items_count") == batches + 1
    assert metrics.PIPELINE.get_sample_value("storywatch_decide_batch_items_sum") == settled + 4
    assert [result.item_id for result in results] == ordered  # its own first, then oldest
    assert {key: outcome for key, (_, outcome, _) in _rows(runtime).items()} == one_at_a_time
    assert [r.outcome for r in results] == [one_at_a_time[key] for key in KEYS]
    assert sum(1 for r in results if r.alert_id) == 1 == _alerts(runtime)
    # The copy, decided after its original in the same transaction, is one more report of
    # the story (the original's story is read as written, not as first loaded).
    assert [key for _, key in _reports(runtime)] == sorted([KEYS[0], KEYS[1], KEYS[3]])
    assert {attempts for _, _, attempts in _rows(runtime).values()} == {1}  # one run each
    # Round trips: the others' rows read in one statement, and the decisions written in
    # one before the copy (it asks whether its original is decided) and one at the end.
    reads = [s for s in statements if "FOR UPDATE OF items" in s and "JOIN articles" in s]
    writes = [s for s in statements if "UPDATE items SET status" in s]
    assert (len(reads), len(writes)) == (2, 2)
    decided = len(statements)
    # The others' own messages find them decided here, without a statement (their alerts
    # went out with the first message's).
    for result in results[1:]:
        assert pipeline.decide_ready(runtime, result.item_id) == [replace(result, alert_id=None)]
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
        rt: Runtime, session: Any, waiting: Any, article: Any, item_id: int, *rest: Any
    ) -> Any:
        if item_id in failing:
            raise ValueError("a bug in one decision")
        return decide(rt, session, waiting, article, item_id, *rest)

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


@pytest.mark.postgres
def test_only_an_items_first_run_takes_others_along(on_postgres: Runtime) -> None:
    """A redelivered message (its process died) decides its item alone: items that kill
    their process one after another cost an innocent item one run each, not all six."""
    runtime = on_postgres
    ordered = _stored(runtime)
    with transaction(runtime.sessions) as session:
        session.execute(update(Item).where(Item.id == ordered[0]).values(attempts=1))
    assert [r.item_id for r in pipeline.decide_ready(runtime, ordered[0])] == [ordered[0]]
    rows = _rows(runtime)
    assert [rows[key][2] for key in KEYS] == [2, 0, 0, 0]


def _holding(postgres_url: str, statement: str) -> tuple[threading.Event, threading.Thread]:
    """Another transaction holds rows (as another decider would) until the event is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        engine = create_engine(postgres_url)
        with engine.connect() as connection, connection.begin():
            connection.execute(text(statement))
            held.set()
            release.wait(30)
        engine.dispose()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    return release, thread


@pytest.mark.postgres
def test_items_taken_along_never_wait_for_another_decider(
    on_postgres: Runtime, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item another transaction holds is left to it, and the batch ends before a story
    another transaction holds, without waiting (two deciders waiting for each other's
    stories, each holding its own, is a deadlock)."""
    runtime = on_postgres
    ordered = _stored(runtime)
    pick = decisions.start_untried_decisions
    holders: list[tuple[threading.Event, threading.Thread]] = []

    def picked_then_taken(session: Any, besides: int, limit: int) -> list[int]:
        # The other decider takes the development's own message just after this pick.
        taken = pick(session, besides, limit)
        holders.append(
            _holding(postgres_url, f"select 1 from items where id = {ordered[1]} for update")
        )
        return taken

    monkeypatch.setattr(decisions, "start_untried_decisions", picked_then_taken)
    try:
        results = pipeline.decide_ready(runtime, ordered[0])
    finally:
        for release, thread in holders:
            release.set()
            thread.join()
    monkeypatch.undo()
    # The development's item is held; its copy waits for it.
    assert [r.item_id for r in results] == [ordered[0], ordered[2]]
    story = results[0].story_id
    assert story is not None
    # The unmatched item's own message (remembered); then it is made new again, to be the
    # first item of a batch while another transaction holds the story.
    assert pipeline.decide_ready(runtime, ordered[2])[0].outcome == "unmatched"
    with transaction(runtime.sessions) as session:
        session.execute(update(Item).where(Item.id.in_(ordered[1:])).values(attempts=0))
    release, thread = _holding(
        postgres_url, f"select 1 from stories where id = '{story}' for update"
    )
    try:
        with transaction(runtime.sessions) as session:
            session.execute(update(Item).where(Item.id == ordered[2]).values(status="new"))
        with capture_logs() as logged:
            results = pipeline.decide_ready(runtime, ordered[2])
    finally:
        release.set()
        thread.join()
    # The unmatched item is decided; the report would need the held story: the batch ends
    # there, committed (not rolled back after a lock timeout, and decided again alone).
    assert [r.item_id for r in results] == [ordered[2]]
    assert [e["event"] for e in logged if e["event"].startswith("item.")] == ["item.unmatched"]
    assert _rows(runtime)[KEYS[1]] == ("new", None, 1)
    assert pipeline.decide_ready(runtime, ordered[1])[0].outcome == "development"
    assert pipeline.decide_ready(runtime, ordered[3])[0].outcome == "duplicate"
    assert _alerts(runtime) == 1


# The development's page told again in other words: not a copy, but no new fact.
RETOLD = (
    (
        "Kazakhstan's Transport Ministry on Thursday published the final report",
        "The final report, released on Thursday by the transport ministry of Kazakhstan, is out",
    ),
    (
        "The 212-page report, signed by investigation commission chairman Talgat Lastayev, "
        "says that laboratory tests in Brazil identified",
        "According to the 212 pages signed by commission head Talgat Lastayev, Brazilian "
        "laboratories matched",
    ),
    (
        "The commission recommends that air navigation services close airspace",
        "Investigators want controllers to shut the skies",
    ),
    (
        "Azerbaijan's Foreign Ministry said Baku would file a claim against Russia",
        "Baku, its foreign ministry announced, will sue Moscow",
    ),
    ("Moscow rejected the report's conclusions.", "Russia dismissed the conclusions."),
    (
        "Azerbaijan Airlines said it would keep its flights",
        "The carrier AZAL will hold its services",
    ),
    (
        "Kazakhstan's final report: Russian missile fragments brought down AZAL jet",
        "Missile shards downed Azerbaijani airliner, Astana's investigators conclude",
    ),
)


def _concert_feed(site: HTTPServer, *others: tuple[str, str, str]) -> str:
    """feeds.toml for a feed of a concert (like no story: its first look locks none), the
    development's page retold in other words, and `others` (title, path, guid)."""
    base = site.url_for("").rstrip("/")
    retold = (FIXTURES / "article-development.html").read_text(encoding="utf-8")
    for said, again in RETOLD:
        assert said in retold
        retold = retold.replace(said, again)
    site.expect_request("/r/retold").respond_with_data(retold, content_type="text/html")
    unrelated = (
        "<html><head><title>Orchestra season</title></head><body><article><h1>The city "
        "orchestra opens its season</h1>"
        + "".join(
            f"<p>The orchestra will play {work} on {day}, conducted by its new music "
            "director, with tickets on sale at the concert hall from Monday morning.</p>"
            for work, day in (
                ("Mahler's second symphony", "Friday"),
                ("three Haydn quartets", "Saturday"),
                ("a new cello concerto", "Sunday"),
            )
        )
        + "</article></body></html>"
    )
    site.expect_request("/r/orchestra").respond_with_data(unrelated, content_type="text/html")
    listed = (
        ("Orchestra season", "/r/orchestra", "concert"),
        ("The report, retold", "/r/retold", "retold"),
        *others,
    )
    feed = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>R</title><link>{base}/</link>'
        "<description>d</description>"
        + "".join(
            f"<item><title>{title}</title><link>{base}{path}</link><guid>{guid}</guid></item>"
            for title, path, guid in listed
        )
        + "</channel></rss>"
    )
    site.expect_request("/r/feed.xml").respond_with_data(feed)
    return f'[[feeds]]\nid = "local"\nurl = "{base}/r/feed.xml"\npoll_every_seconds = 60\n'


def _keyed(runtime: Runtime) -> dict[str, int]:
    """The feed's new items, polled: their ids by guid."""
    ids = pipeline.poll_feed(runtime, "local").new_item_ids
    with transaction(runtime.sessions) as session:
        rows = session.execute(select(Item.key, Item.id).where(Item.id.in_(ids))).all()
    return {key.removeprefix("guid:"): item_id for key, item_id in rows}


@pytest.mark.postgres
def test_a_copy_taken_along_writes_nothing_when_its_story_is_held(
    tmp_path: Path, site: HTTPServer, postgres_url: str
) -> None:
    """A copy is recorded on its original's development under the story's lock: taken
    along while another transaction holds that story, it writes nothing and ends the
    batch, left to its own message."""
    feeds = _concert_feed(
        site,
        # Related headlines: a copy, not a site wall (worker.pipeline.copies.site_wall).
        (
            "Kazakhstan's final report: Russian missile fragments brought down AZAL jet",
            "/caspian/azal-final-report",
            "report",
        ),
        (
            "AZAL crash: Kazakhstan report blames Russian missile",
            "/syndicated/world/2026/11/20/azal-report-russian-missile",
            "copy",
        ),
    )
    runtime = make_runtime(tmp_path, feeds, database_url=postgres_url)
    try:
        keyed = _keyed(runtime)
        for guid in ("report", "concert", "copy"):
            assert isinstance(pipeline.store_item(runtime, keyed[guid]), pipeline.Stored)
        development = pipeline.decide_item(runtime, keyed["report"])
        assert development.outcome == "development"
        release, thread = _holding(
            postgres_url, f"select 1 from stories where id = '{development.story_id}' for update"
        )
        try:
            results = pipeline.decide_ready(runtime, keyed["concert"])
        finally:
            release.set()
            thread.join()
        assert [r.item_id for r in results] == [keyed["concert"]]
        with transaction(runtime.sessions) as session:
            assert session.scalar(select(func.count()).select_from(DevelopmentSource)) == 0
            copy = session.get(Item, keyed["copy"])
            assert copy is not None and (copy.status, copy.attempts) == ("new", 1)
        assert pipeline.decide_ready(runtime, keyed["copy"])[0].outcome == "duplicate"
        with transaction(runtime.sessions) as session:
            assert session.scalar(select(func.count()).select_from(DevelopmentSource)) == 1
    finally:
        runtime.close()


@pytest.mark.postgres
def test_a_story_locked_during_a_batch_is_caught_up_first(
    tmp_path: Path, site: HTTPServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another decider records a development while this one decides items together: the
    first item that locks that story sees it, so a retelling of it is no second alert."""
    feeds = _concert_feed(site, ("Final report", "/caspian/azal-final-report", "report"))
    first = make_runtime(tmp_path / "one", feeds, database_url=postgres_url)
    second = make_runtime(tmp_path / "two", feeds, database_url=postgres_url)
    try:
        keyed = _keyed(first)
        concert, report, retelling = (keyed[k] for k in ("concert", "report", "retold"))
        for item_id in (concert, report, retelling):
            assert isinstance(pipeline.store_item(first, item_id), pipeline.Stored)
        for runtime in (first, second):
            with transaction(runtime.sessions) as session:
                runtime.trackers.current(session)  # both trackers warm, before any decision
        # The report is the other decider's (its run counted); this one takes the concert,
        # then the retelling along.
        with transaction(first.sessions) as session:
            session.execute(update(Item).where(Item.id == report).values(attempts=1))
        decide = deciding._decide_in

        def meanwhile(rt: Runtime, session: Any, item_id: int, *rest: Any, **named: Any) -> Any:
            result = decide(rt, session, item_id, *rest, **named)
            if rt is second and item_id == concert:
                assert pipeline.decide_item(first, report, new_run=False).outcome == "development"
            return result

        monkeypatch.setattr(deciding, "_decide_in", meanwhile)
        results = pipeline.decide_ready(second, concert)
        assert [(r.item_id, r.outcome) for r in results] == [
            (concert, "unmatched"),
            (retelling, "rehash"),
        ]
        assert _alerts(first) == 1
    finally:
        first.close()
        second.close()
