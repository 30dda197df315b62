"""Polling at the edges: a feed with thousands of new items, a feed that moved or is gone,
a GUID reused for another article. Real SQLite, a real local HTTP server."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select, update

from tests.test_cli import storywatch
from tests.test_pipeline import feed_row, make_runtime, rss
from worker import pipeline
from worker.cli.ops_report import render_status
from worker.pipeline import polling
from worker.pipeline.runtime import Runtime
from worker.store import feeds as feeds_store
from worker.store import ops, subscriptions
from worker.store.engine import transaction
from worker.store.schema import Feed, Item

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def dated_rss(base: str, count: int, *, newest: datetime) -> str:
    """`count` items, newest first as feeds list them, one minute apart."""
    items = "".join(
        f"<item><title>Item {n}</title><link>{base}/a/{n}</link><guid>g{n}</guid>"
        f"<pubDate>{(newest - timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S +0000')}"
        "</pubDate></item>"
        for n in range(count)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>{items}'
        "</channel></rss>"
    )


def items_of(runtime: Runtime) -> list[Item]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(Item).order_by(Item.id)))


@pytest.fixture
def runtime(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Runtime]:
    url = httpserver.url_for("/feed.xml")
    rt = make_runtime(
        tmp_path, f'[[feeds]]\nid = "local"\nurl = "{url}"\npoll_every_seconds = 600\n'
    )
    yield rt
    rt.close()


def test_a_huge_feed_is_read_once_and_taken_in_batches_oldest_first_bounded_in_flight(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    body = dated_rss(base, 450, newest=datetime(2026, 12, 1, 12, tzinfo=UTC))
    httpserver.expect_request("/feed.xml").respond_with_data(body, headers={"ETag": '"v1"'})

    first = pipeline.poll_feed(runtime, "local")
    assert len(first.new_item_ids) == polling.NEW_ITEMS_PER_POLL == 100
    # The rest are held, and come soon: the feed is read once, so its validators stay.
    assert first.next_check_in is not None and first.next_check_in <= 30
    assert feed_row(runtime).etag == '"v1"'
    taken = items_of(runtime)
    assert [item.key for item in taken[:100]] == [f"guid:g{n}" for n in range(449, 349, -1)]
    assert [item.status for item in taken] == ["new"] * 100 + ["held"] * 350

    second = pipeline.poll_feed(runtime, "local")
    third = pipeline.poll_feed(runtime, "local")  # 200 wait: the feed has no room left
    assert (second.status, len(second.new_item_ids)) == ("backlog", 100)
    assert (third.status, third.new_item_ids) == ("backlog", ())
    rest = []
    for _ in range(3):
        with transaction(runtime.sessions) as session:
            caught_up = update(Item).where(Item.status == "new").values(status="done")
            session.execute(caught_up)  # the workers caught up
        rest.append(pipeline.poll_feed(runtime, "local"))
    assert [len(poll.new_item_ids) for poll in rest] == [100, 100, 50]
    assert len(httpserver.log) == 1  # every batch after the first came without a fetch
    published = [item.published for item in items_of(runtime)]
    assert len(published) == 450 and published == sorted(published)  # type: ignore[type-var]
    # All taken: the next check fetches again, and the interval is the feed's own.
    after = pipeline.poll_feed(runtime, "local")
    assert after.status == "unchanged" and (after.next_check_in or 0) >= 600
    assert len(httpserver.log) == 2


def test_a_held_item_is_handed_out_once_when_two_checks_race(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two checks of one feed at once (a poll claimed again after a long wait) read the
    same held ids; the second to update must find them taken, not hand them out again."""
    base = httpserver.url_for("").rstrip("/")
    body = dated_rss(base, 450, newest=datetime(2026, 12, 1, 12, tzinfo=UTC))
    httpserver.expect_request("/feed.xml").respond_with_data(body)
    pipeline.poll_feed(runtime, "local")
    read_before: list[int] = []
    real = feeds_store._held_ids

    def stale(session: object, feed_id: str, *, limit: int) -> list[int]:
        if not read_before:  # the first check's read, which the second one also made
            read_before.extend(real(session, feed_id, limit=limit))  # type: ignore[arg-type]
        return list(read_before)

    monkeypatch.setattr(feeds_store, "_held_ids", stale)
    first = pipeline.poll_feed(runtime, "local")
    with transaction(runtime.sessions) as session:  # room again: the workers caught up
        session.execute(update(Item).where(Item.status == "new").values(status="done"))
    second = pipeline.poll_feed(runtime, "local")  # read the same ids before the first wrote
    assert len(first.new_item_ids) == 100 and second.new_item_ids == ()
    statuses = [item.status for item in items_of(runtime)]
    assert statuses.count("done") == 200 and statuses.count("held") == 250


def test_a_feed_that_leaves_the_configuration_or_moves_drops_what_it_held(
    tmp_path: Path, runtime: Runtime, httpserver: HTTPServer
) -> None:
    from worker.pipeline.setup import initialise  # noqa: PLC0415

    base = httpserver.url_for("").rstrip("/")
    body = dated_rss(base, 450, newest=datetime(2026, 12, 1, 12, tzinfo=UTC))
    httpserver.expect_request("/feed.xml").respond_with_data(body)
    httpserver.expect_request("/other.xml").respond_with_data(body)
    pipeline.poll_feed(runtime, "local")
    assert feed_row(runtime).held_items == 350
    # feeds.toml now names another address: its items are not the old one's.
    moved = make_runtime(
        tmp_path, f'[[feeds]]\nid = "local"\nurl = "{base}/other.xml"\npoll_every_seconds = 600\n'
    )
    try:
        initialise(moved)
        assert feed_row(moved).held_items == 0
        assert [i.status for i in items_of(moved)].count("held") == 0
        assert pipeline.poll_feed(moved, "local").status == "fetched"  # not a backlog check
        assert feed_row(moved).held_items > 0
    finally:
        moved.close()
    # The feed leaves feeds.toml: nothing will ever release what it held.
    gone = make_runtime(tmp_path, "")
    try:
        assert feed_row(gone).enabled is False and feed_row(gone).held_items == 0
        assert [i.status for i in items_of(gone)].count("held") == 0
    finally:
        gone.close()


def test_removing_a_desk_feed_in_a_terminal_stops_it_and_drops_what_it_held(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    body = dated_rss(base, 450, newest=datetime(2026, 12, 1, 12, tzinfo=UTC))
    httpserver.expect_request("/feed.xml").respond_with_data(body)
    settings, env = runtime.settings, cli_env(runtime)
    listed = storywatch("feeds", "remove", "local", cwd=settings.data_dir, env=env)
    assert listed.returncode == 1 and "listed in feeds.toml" in listed.stderr
    assert feed_row(runtime).enabled is True
    with transaction(runtime.sessions) as session:  # as if added on the desk
        session.execute(update(Feed).values(origin=subscriptions.DESK))
    pipeline.poll_feed(runtime, "local")
    assert feed_row(runtime).held_items == 350

    removed = storywatch("feeds", "remove", "local", cwd=settings.data_dir, env=env)

    assert removed.returncode == 0, removed.stderr
    assert feed_row(runtime).enabled is False and feed_row(runtime).held_items == 0
    statuses = [item.status for item in items_of(runtime)]
    assert statuses == ["new"] * 100  # what was handed out is still processed
    assert pipeline.claim_due_feeds(runtime) == []
    unknown = storywatch("feeds", "remove", "nope", cwd=settings.data_dir, env=env)
    assert unknown.returncode == 1 and "no feed 'nope'" in unknown.stderr


def test_retention_deletes_what_a_stopped_feed_held_and_keeps_a_live_ones(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    from worker.store import retention  # noqa: PLC0415
    from worker.store.schema import Feed  # noqa: PLC0415

    base = httpserver.url_for("").rstrip("/")
    body = dated_rss(base, 450, newest=datetime(2026, 12, 1, 12, tzinfo=UTC))
    httpserver.expect_request("/feed.xml").respond_with_data(body)
    pipeline.poll_feed(runtime, "local")
    later = runtime.clock() + timedelta(days=1)
    with transaction(runtime.sessions) as session:
        assert retention.delete_items(session, later, 1000) == 0  # waiting to be released
        feed = session.get(Feed, "local")
        assert feed is not None
        feed.stopped = "HTTP 410 Gone: the site removed the feed"
    with transaction(runtime.sessions) as session:
        assert retention.delete_items(session, later, 1000) == 350  # nothing will release them
    assert [item.status for item in items_of(runtime)] == ["new"] * 100


def test_items_past_what_a_feed_may_hold_are_read_again_later(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polling, "HELD_ITEMS_PER_FEED", 150)
    base = httpserver.url_for("").rstrip("/")
    body = dated_rss(base, 450, newest=datetime(2026, 12, 1, 12, tzinfo=UTC))
    httpserver.expect_request("/feed.xml").respond_with_data(body, headers={"ETag": '"v1"'})

    pipeline.poll_feed(runtime, "local")
    # 100 taken, 150 held, 200 unread: the next fetch must read the body, not hear 304.
    assert feed_row(runtime).etag is None
    assert len(items_of(runtime)) == 250
    statuses = []
    for _ in range(6):
        with transaction(runtime.sessions) as session:
            session.execute(update(Item).where(Item.status == "new").values(status="done"))
        statuses.append(pipeline.poll_feed(runtime, "local").status)
    assert statuses[:2] == ["backlog", "backlog"] and statuses[2] == "fetched"
    keys = [item.key for item in items_of(runtime)]
    assert len(keys) == len(set(keys)) == 450


def test_a_permanent_redirect_is_remembered_and_a_temporary_one_is_not(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    body = rss(base, ("One", f"{base}/a/1", "g1", "First item summary text."))
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(
        "", status=301, headers={"Location": "/moved.xml"}
    )
    httpserver.expect_ordered_request("/moved.xml").respond_with_data(body)
    httpserver.expect_ordered_request("/moved.xml").respond_with_data(
        "", status=302, headers={"Location": "/mirror.xml"}
    )
    httpserver.expect_ordered_request("/mirror.xml").respond_with_data(body)
    httpserver.expect_ordered_request("/moved.xml").respond_with_data(body)

    statuses = [pipeline.poll_feed(runtime, "local").status for _ in range(3)]

    assert statuses == ["fetched", "unchanged", "unchanged"]
    httpserver.check_assertions()  # /feed.xml was asked once: then /moved.xml, every time
    assert feed_row(runtime).moved_to == f"{base}/moved.xml"


def test_a_feed_answering_410_stops_until_its_url_changes(
    tmp_path: Path, runtime: Runtime, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data("gone", status=410)
    summary = pipeline.poll_feed(runtime, "local")
    assert summary.status == "stopped" and (summary.error or "").startswith("HTTP 410 Gone on ")
    far_future = runtime.clock() + timedelta(days=30)
    runtime.clock = lambda: far_future
    assert pipeline.claim_due_feeds(runtime) == []
    assert pipeline.poll_feed(runtime, "local").status == "gone"  # not polled again
    with transaction(runtime.sessions) as session:
        shown = render_status(ops.status_report(session, runtime.clock()))
    assert "never (stopped)" in shown  # no "next check in 4s" for a feed never checked again

    new_url = httpserver.url_for("/new.xml")
    runtime2 = make_runtime(
        tmp_path, f'[[feeds]]\nid = "local"\nurl = "{new_url}"\npoll_every_seconds = 600\n'
    )
    try:  # make_runtime ran the start-up sync (worker.pipeline.setup.initialise)
        feed = feed_row(runtime2)
        assert (feed.stopped, feed.url) == (None, new_url)
    finally:
        runtime2.close()


def test_repeated_404s_stop_a_feed_and_one_success_resets_the_count(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    for _ in range(4):
        httpserver.expect_ordered_request("/feed.xml").respond_with_data("", status=404)
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(
        rss(base, ("One", f"{base}/a/1", "g1", "First item summary text."))
    )
    for _ in range(5):
        httpserver.expect_ordered_request("/feed.xml").respond_with_data("", status=404)

    first = [pipeline.poll_feed(runtime, "local").status for _ in range(5)]
    second = [pipeline.poll_feed(runtime, "local").status for _ in range(5)]

    assert first == ["error"] * 4 + ["fetched"]
    assert second == ["error"] * 4 + ["stopped"]
    assert (feed_row(runtime).stopped or "").startswith("HTTP 404 Not Found on 5 polls in a row")

    # The operator fixed the site: `storywatch feeds resume` polls it again at once.
    settings, env = runtime.settings, cli_env(runtime)
    resumed = storywatch("feeds", "resume", "local", cwd=settings.data_dir, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert storywatch("feeds", "resume", "nope", cwd=settings.data_dir, env=env).returncode == 1
    assert feed_row(runtime).stopped is None
    assert pipeline.claim_due_feeds(runtime) == ["local"]


def test_a_guid_reused_with_a_new_link_is_a_new_item_once(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    first = rss(base, ("Daily", f"{base}/a/monday", "daily", "Monday's briefing text."))
    second = rss(base, ("Daily", f"{base}/a/tuesday", "daily", "Tuesday's briefing text."))
    for body in (first, second, second.replace("briefing", "summary")):
        httpserver.expect_ordered_request("/feed.xml").respond_with_data(body)

    news = [len(pipeline.poll_feed(runtime, "local").new_item_ids) for _ in range(3)]

    assert news == [1, 1, 0]
    assert [item.url for item in items_of(runtime)] == [f"{base}/a/monday", f"{base}/a/tuesday"]


def test_a_guid_and_link_pair_listed_again_is_known_wherever_it_stands(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    """The pair (GUID, link) seen on the first poll is the same item when a later poll
    lists a newer link with that GUID ahead of it."""
    base = httpserver.url_for("").rstrip("/")
    monday = ("Daily", f"{base}/a/monday", "daily", "Monday's briefing text.")
    tuesday = ("Daily", f"{base}/a/tuesday", "daily", "Tuesday's briefing text.")
    wednesday = ("Daily", f"{base}/a/wednesday", "daily", "Wednesday's briefing text.")
    for body in (
        rss(base, monday),
        rss(base, tuesday, monday),
        rss(base, wednesday, tuesday, monday),
    ):
        httpserver.expect_ordered_request("/feed.xml").respond_with_data(body)

    news = [len(pipeline.poll_feed(runtime, "local").new_item_ids) for _ in range(3)]

    assert news == [1, 1, 1]
    assert [item.url for item in items_of(runtime)] == [
        f"{base}/a/monday",
        f"{base}/a/tuesday",
        f"{base}/a/wednesday",
    ]


def test_a_first_run_without_network_says_so_and_retries_within_a_minute(
    tmp_path: Path,
) -> None:
    # Port 9 (discard) is closed here: every poll fails to connect, as offline.
    feeds = "".join(
        f'[[feeds]]\nid = "f{n}"\nurl = "http://127.0.0.1:9/{n}.xml"\npoll_every_seconds = 900\n'
        for n in range(3)
    )
    runtime = make_runtime(tmp_path, feeds)
    try:
        with transaction(runtime.sessions) as session:
            before = ops.status_report(session, runtime.clock())
        assert not before.healthy and before.reachable_feeds == 0  # nothing works yet
        delays = [pipeline.poll_feed(runtime, f"f{n}").next_check_in for n in range(3)]
        assert all(delay is not None and delay <= 30 for delay in delays)
        with transaction(runtime.sessions) as session:
            report = ops.status_report(session, runtime.clock())
    finally:
        runtime.close()
    assert not report.healthy
    assert [feed.stale_reason for feed in report.feeds] == ["never reached (1 failed poll(s))"] * 3
    text = render_status(report)
    assert "FEEDS (3, 3 stale; 0 of 3 feeds reachable)" in text
    assert "ATTENTION: 0 of 3 feeds reachable" in text


def test_polls_of_one_host_share_a_kept_alive_connection(tmp_path: Path) -> None:
    connections: list[str] = []
    body = rss(
        "http://127.0.0.1", ("One", "http://127.0.0.1/a/1", "g1", "First item text.")
    ).encode()

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # persistent connections

        def setup(self) -> None:
            connections.append(str(self.client_address))
            super().setup()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    feeds = "".join(
        f'[[feeds]]\nid = "f{n}"\nurl = "http://127.0.0.1:{port}/{n}.xml"\n' for n in range(3)
    )
    runtime = make_runtime(tmp_path, feeds)
    try:
        statuses = [pipeline.poll_feed(runtime, f"f{n}").status for n in range(3)]
        statuses.append(pipeline.poll_feed(runtime, "f0").status)
    finally:
        runtime.close()
        server.shutdown()
        server.server_close()
    assert statuses == ["fetched", "fetched", "fetched", "unchanged"]
    assert len(connections) == 1, connections  # four requests, one connection


def test_one_tick_hands_out_every_due_feed_in_batches(tmp_path: Path) -> None:
    feeds = "".join(
        f'[[feeds]]\nid = "f{n}"\nurl = "https://feeds.invalid/{n}.xml"\n' for n in range(1_200)
    )
    runtime = make_runtime(tmp_path, feeds)
    try:
        batches = list(pipeline.due_feed_batches(runtime))
        again = list(pipeline.due_feed_batches(runtime))  # all leased now
    finally:
        runtime.close()
    assert [len(batch) for batch in batches] == [500, 500, 200]
    assert len({feed for batch in batches for feed in batch}) == 1_200 and again == []


def cli_env(runtime: Runtime) -> dict[str, str]:
    """The environment a `storywatch` command needs to act on this runtime's database."""
    return {
        "STORYWATCH_CONFIG_DIR": str(runtime.settings.config_dir),
        "STORYWATCH_DATA_DIR": str(runtime.settings.data_dir),
        "PATH": os.environ.get("PATH", ""),
    }
