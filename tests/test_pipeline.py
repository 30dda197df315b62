"""The use cases against a real database and real local HTTP servers.

Feeds that answer 304, 429, 500, invalid XML, and pages that time out: each is recorded
with context and scheduled again, and processing goes on. Every test runs on SQLite; the
ones marked `postgres` repeat the decisive paths on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug import Request, Response

from tests.conftest import write_config
from worker import pipeline
from worker.decide import tracker as tracker_module
from worker.decide.match import ArticleView, MatchConfig
from worker.decide.tracker import Tracker
from worker.errors import OriginalUndecided, TransientFetchError
from worker.pipeline import processing
from worker.pipeline.runtime import Runtime
from worker.pipeline.tracking import TrackerCache
from worker.service import tasks
from worker.settings import load_settings
from worker.store.engine import transaction
from worker.store.schema import (
    Alert,
    Article,
    Delivery,
    Feed,
    Item,
    PreparedView,
    StoryReport,
)

FIXTURES = Path(__file__).parent / "fixtures" / "site"
RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title>
<link>{base}/</link><description>d</description>{items}</channel></rss>"""
ITEM = """<item><title>{title}</title><link>{link}</link><guid isPermaLink="false">{guid}</guid>
<description>{summary}</description></item>"""


def rss(base: str, *items: tuple[str, str, str, str]) -> str:
    rendered = "".join(
        ITEM.format(title=t, link=link, guid=g, summary=s) for t, link, g, s in items
    )
    return RSS.format(base=base, items=rendered)


def make_runtime(
    tmp_path: Path, feeds: str, *, database_url: str | None = None, **env: str
) -> Runtime:
    config = write_config(tmp_path, feeds=feeds)
    environ = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
        "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
        # Generous: a loaded CI machine can take a second to answer a local request. The
        # test of timeouts sets its own.
        "STORYWATCH_FETCH_TIMEOUT_SECONDS": "10",
        **env,
    }
    if database_url:
        environ["STORYWATCH_DATABASE_URL"] = database_url
    runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
    pipeline.initialise(runtime)
    return runtime


@pytest.fixture
def feed_toml(httpserver: HTTPServer) -> str:
    url = httpserver.url_for("/feed.xml")
    return f'[[feeds]]\nid = "local"\nurl = "{url}"\npoll_every_seconds = 60\n'


@pytest.fixture
def runtime(tmp_path: Path, feed_toml: str) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path, feed_toml)
    yield rt
    rt.close()


def feed_row(runtime: Runtime, feed_id: str = "local") -> Feed:
    with transaction(runtime.sessions) as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        return feed


def test_conditional_get_sends_validators_and_304_is_not_an_error(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    body = rss(base, ("One", f"{base}/a/1", "g1", "First item summary text."))
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(
        body,
        headers={"ETag": '"v1"', "Last-Modified": "Fri, 20 Nov 2026 10:00:00 GMT"},
        content_type="application/rss+xml",
    )
    httpserver.expect_ordered_request(
        "/feed.xml",
        headers={"If-None-Match": '"v1"', "If-Modified-Since": "Fri, 20 Nov 2026 10:00:00 GMT"},
    ).respond_with_data("", status=304)

    first = pipeline.poll_feed(runtime, "local")
    second = pipeline.poll_feed(runtime, "local")

    assert (first.status, len(first.new_item_ids)) == ("fetched", 1)
    assert (second.status, second.new_item_ids) == ("not_modified", ())
    feed = feed_row(runtime)
    assert feed.error_count == 0 and feed.last_status == 304 and feed.etag == '"v1"'
    assert feed.next_check_at > runtime.clock() + timedelta(seconds=50)


def test_the_feed_ttl_is_honoured_after_304_and_unchanged_polls(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    body = rss(base, ("One", f"{base}/a/1", "g1", "First item summary text.")).replace(
        "<description>d</description>", "<description>d</description><ttl>60</ttl>"
    )
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(body, headers={"ETag": '"v1"'})
    httpserver.expect_ordered_request("/feed.xml").respond_with_data("", status=304)
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(body)  # no validators

    statuses = []
    for _ in range(3):
        before = runtime.clock()
        statuses.append(pipeline.poll_feed(runtime, "local").status)
        # <ttl>60</ttl> minutes, not the configured 60 seconds, on every kind of success.
        assert feed_row(runtime).next_check_at >= before + timedelta(seconds=3600)
    assert statuses == ["fetched", "not_modified", "unchanged"]


def test_same_items_polled_twice_are_recorded_once(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    one = ("One", f"{base}/a/1", "g1", "First item summary text.")
    two = ("Two", f"{base}/a/2", "g2", "Second item summary text.")
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(rss(base, one))
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(rss(base, one))
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(rss(base, two, one))

    polls = [pipeline.poll_feed(runtime, "local") for _ in range(3)]

    assert [p.status for p in polls] == ["fetched", "unchanged", "fetched"]
    assert [len(p.new_item_ids) for p in polls] == [1, 0, 1]
    with transaction(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 2


def test_429_honours_retry_after_and_keeps_the_feed_scheduled(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "3600"}
    )
    before = runtime.clock()
    summary = pipeline.poll_feed(runtime, "local")
    feed = feed_row(runtime)
    assert summary.status == "error"
    assert feed.error_count == 1 and feed.last_status == 429
    assert "429" in (feed.last_error or "")
    assert feed.next_check_at >= before + timedelta(seconds=3600)


def test_500_backs_off_exponentially_then_recovers(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    for _ in range(2):
        httpserver.expect_ordered_request("/feed.xml").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(
        rss(base, ("One", f"{base}/a/1", "g1", "First item summary text."))
    )
    delays = [pipeline.poll_feed(runtime, "local").next_check_in for _ in range(2)]
    assert feed_row(runtime).error_count == 2
    # The first retry comes soon (30 s, below the 60 s interval), then the window
    # doubles: 60 s; each wait is drawn from the window's last 10%.
    assert delays[0] is not None and delays[1] is not None
    assert 0.9 * 30 <= delays[0] <= 30 < 0.9 * 60 <= delays[1] <= 60
    recovered = pipeline.poll_feed(runtime, "local")
    assert recovered.status == "fetched" and feed_row(runtime).error_count == 0


def test_invalid_xml_is_recorded_not_raised(runtime: Runtime, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        "<html><body><p>Not a feed at all, just a page.</p></body></html>", content_type="text/html"
    )
    summary = pipeline.poll_feed(runtime, "local")
    feed = feed_row(runtime)
    assert summary.status == "error" and feed.error_count == 1
    assert "FeedParseError" in (feed.last_error or "")


def test_a_feed_that_breaks_the_parser_is_recorded_and_backed_off(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error nobody foresaw (here a parser bug, which no real feed triggers on demand)
    is the feed's failure, recorded with context, not a crashed poll task."""

    def broken_parser(body: bytes, **_: object) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr("worker.pipeline.polling.parse_feed", broken_parser)
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss(base, ("One", f"{base}/a/1", "g1", "First item summary text."))
    )
    before = runtime.clock()
    summary = pipeline.poll_feed(runtime, "local")
    feed = feed_row(runtime)
    assert summary.status == "error" and feed.error_count == 1
    assert (feed.last_error or "").endswith("the parser failed: RuntimeError: parser bug")
    assert feed.next_check_at >= before + timedelta(seconds=0.9 * 30)  # the first retry


def test_due_feeds_are_claimed_once(runtime: Runtime) -> None:
    assert pipeline.claim_due_feeds(runtime) == ["local"]
    assert pipeline.claim_due_feeds(runtime) == []


def _feed_with(httpserver: HTTPServer, *items: tuple[str, str, str, str]) -> None:
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/feed.xml").respond_with_data(rss(base, *items))


def _page(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_page_timeout_retries_then_falls_back_to_the_summary(
    tmp_path: Path, feed_toml: str, httpserver: HTTPServer
) -> None:
    runtime = make_runtime(tmp_path, feed_toml, STORYWATCH_FETCH_TIMEOUT_SECONDS="1")
    try:
        base = httpserver.url_for("").rstrip("/")
        summary = (
            "Kazakhstan's final report says 147 fragments of a Russian 57E6 missile brought "
            "down the Azerbaijan Airlines Embraer 190 near Aktau; Baku will seek 410 million "
            "dollars."
        )
        _feed_with(httpserver, ("AZAL report", f"{base}/slow", "g1", summary))

        def slow(_request: Request) -> Response:
            time.sleep(2.5)  # beyond the 1 s read timeout and 1.5 s deadline
            return Response(_page("article-development.html"), content_type="text/html")

        httpserver.expect_request("/slow").respond_with_handler(slow)
        [item_id] = pipeline.poll_feed(runtime, "local").new_item_ids

        with pytest.raises(TransientFetchError):
            pipeline.process_item(runtime, item_id, page_attempts=2)
        with transaction(runtime.sessions) as session:
            item = session.get(Item, item_id)
            assert item is not None and item.status == "new" and item.attempts == 1

        result = pipeline.process_item(runtime, item_id, page_attempts=2)
        assert result.outcome in {"development", "rehash", "unmatched"}
        with transaction(runtime.sessions) as session:
            item = session.get(Item, item_id)
            # Stored on the second run: from there, attempts count decision runs (one).
            assert item is not None and item.status == "done" and item.attempts == 1
    finally:
        runtime.close()


def _outcomes(
    runtime: Runtime, httpserver: HTTPServer, items: list[tuple[str, str]], pages: dict[str, str]
) -> list[str]:
    """List `items` (title, link path) in the feed, serve `pages` (path: HTML), poll once
    and process every new item in feed order."""
    base = httpserver.url_for("").rstrip("/")
    entries = [(title, f"{base}{link}", f"g{n}", "s") for n, (title, link) in enumerate(items)]
    _feed_with(httpserver, *entries)
    for path, html in pages.items():
        httpserver.expect_request(path).respond_with_data(html, content_type="text/html")
    ids = pipeline.poll_feed(runtime, "local").new_item_ids
    return [pipeline.process_item(runtime, item_id).outcome for item_id in ids]


def test_copies_under_other_urls_and_tracking_parameters_are_duplicates(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    page = _page("article-development.html")
    items = [
        ("Kazakhstan's final report on the AZAL crash", "/a/report"),
        ("Final report (again)", "/a/report?utm_source=rss&amp;utm_campaign=x"),
        ("Missile fragments brought down AZAL jet, report says", "/b/copy"),
    ]
    pages = {"/a/report": page, "/b/copy": page.replace("Caspian Wire", "Metro Herald")}
    outcomes = _outcomes(runtime, httpserver, items, pages)
    assert outcomes == ["development", "duplicate", "duplicate"]


def test_a_copy_of_a_copy_counts_as_a_report_of_the_original_story(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    """Syndicated copies are the wave a surge counts; the copy of a rewrite is one too."""
    page = _page("article-development.html")
    rewrite = page.replace("on Thursday published", "published on Thursday")  # near-copy
    items = [
        ("Kazakhstan's final report on the AZAL crash", "/a/report"),
        ("Final report: Russian missile downed the AZAL jet", "/b/rewrite"),
        ("AZAL crash report blames Russian missile", "/c/copy"),
    ]
    pages = {"/a/report": page, "/b/rewrite": rewrite, "/c/copy": rewrite}
    outcomes = _outcomes(runtime, httpserver, items, pages)
    assert outcomes == ["development", "duplicate", "duplicate"]
    with transaction(runtime.sessions) as session:
        articles = session.scalars(select(Article).order_by(Article.id)).all()
        reports = session.scalars(select(StoryReport.article_id)).all()
    original = articles[0].id
    assert [a.duplicate_of for a in articles] == [None, original, original]
    assert sorted(reports) == [a.id for a in articles]


CONSENT_WALL = """<html><head><title>Before you continue</title></head><body><main><article>
<h1>Before you continue</h1>
<p>We use cookies and data to deliver and maintain our services, track outages and protect
against spam, fraud and abuse, and measure audience engagement and site statistics.</p>
<p>If you choose to accept all, we will also use cookies and data to develop and improve new
services, deliver and measure the effectiveness of ads, and show personalised content.</p>
</article></main></body></html>"""


def test_a_page_the_site_serves_for_every_link_is_not_the_articles_text(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    """A consent wall served for two unrelated stories: the second one is decided on its
    feed summary, not dropped as a "copy" of the first."""
    base = httpserver.url_for("").rstrip("/")
    development = (
        "Kazakhstan's final report says 147 fragments of a Russian 57E6 missile brought down "
        "the Azerbaijan Airlines Embraer 190 near Aktau; Baku will seek 410 million dollars."
    )
    _feed_with(
        httpserver,
        ("Council approves the school budget", f"{base}/a/one", "g1", "The council voted."),
        ("Final report on the Aktau crash", f"{base}/a/two", "g2", development),
        ("Striker joins league leaders", f"{base}/a/three", "g3", "Too short."),
    )
    for path in ("/a/one", "/a/two", "/a/three"):
        httpserver.expect_request(path).respond_with_data(CONSENT_WALL, content_type="text/html")
    ids = pipeline.poll_feed(runtime, "local").new_item_ids
    outcomes = [pipeline.process_item(runtime, item_id).outcome for item_id in ids]
    assert outcomes == ["unmatched", "development", "failed"]
    with transaction(runtime.sessions) as session:
        articles = session.scalars(select(Article).order_by(Article.id)).all()
        third = session.get(Item, ids[2])
    assert [(a.extraction, a.duplicate_of) for a in articles] == [("page", None), ("summary", None)]
    assert third is not None and "the site's wall" in (third.error or "")


def _development_setup(runtime: Runtime, httpserver: HTTPServer) -> list[int]:
    base = httpserver.url_for("").rstrip("/")
    _feed_with(httpserver, ("Report", f"{base}/a/report", "g1", "s"))
    httpserver.expect_request("/a/report").respond_with_data(
        _page("article-development.html"), content_type="text/html"
    )
    return list(pipeline.poll_feed(runtime, "local").new_item_ids)


def test_failed_delivery_is_retried_later_and_a_refused_one_is_dead(
    tmp_path: Path, httpserver: HTTPServer, feed_toml: str
) -> None:
    receiver = HTTPServer(host="127.0.0.1", port=0)
    receiver.start()
    try:
        destinations = f"""
[[destinations]]
id = "flaky"
kind = "webhook"
url = "{receiver.url_for("/flaky")}"
secret_env = "TEST_SECRET"

[[destinations]]
id = "refusing"
kind = "webhook"
url = "{receiver.url_for("/refusing")}"
secret_env = "TEST_SECRET"
"""
        config = write_config(tmp_path, feeds=feed_toml, destinations=destinations)
        environ = {
            "STORYWATCH_CONFIG_DIR": str(config),
            "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
            "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
            "TEST_SECRET": "whsec_dGVzdC1zZWNyZXQtZm9yLWRlbGl2ZXJpZXM=",
        }
        runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
        pipeline.initialise(runtime)
        receiver.expect_oneshot_request("/flaky").respond_with_data("busy", status=503)
        receiver.expect_oneshot_request("/flaky").respond_with_data("ok", status=200)
        receiver.expect_request("/refusing").respond_with_data("no", status=400)

        [item_id] = _development_setup(runtime, httpserver)
        result = pipeline.process_item(runtime, item_id)
        assert result.alert_id is not None

        first = pipeline.deliver_alert(runtime, result.alert_id)
        assert (first.delivered, first.failed, first.dead) == (0, 1, 1)
        assert first.next_attempt_at is not None
        # Nothing is due before the backoff expires.
        assert pipeline.deliver_alert(runtime, result.alert_id).failed == 0
        later = first.next_attempt_at + timedelta(seconds=1)
        runtime.clock = lambda: later
        second = pipeline.deliver_alert(runtime, result.alert_id)
        assert second.delivered == 1
        with transaction(runtime.sessions) as session:
            statuses = dict(session.execute(select(Delivery.destination_id, Delivery.status)).all())
        assert statuses == {"flaky": "delivered", "refusing": "dead"}
        runtime.close()
    finally:
        receiver.stop()


def test_lost_messages_are_found_by_the_sweep(runtime: Runtime, httpserver: HTTPServer) -> None:
    [item_id] = _development_setup(runtime, httpserver)
    assert pipeline.find_stalled_work(runtime).item_ids == ()
    later = runtime.clock() + timedelta(minutes=6)
    runtime.clock = lambda: later
    assert pipeline.find_stalled_work(runtime).item_ids == (item_id,)
    # Re-enqueued items are not reported again until they stall again.
    assert pipeline.find_stalled_work(runtime).item_ids == ()


def test_an_item_stored_whose_decision_was_lost_is_decided_once_by_the_sweep(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    """The two steps are two tasks: a worker killed after storing leaves the item `new`
    with its article; the sweep's run decides it without fetching or storing again."""
    [item_id] = _development_setup(runtime, httpserver)
    stored = pipeline.store_item(runtime, item_id)
    assert isinstance(stored, pipeline.Stored)
    fetches = len(httpserver.log)
    later = runtime.clock() + timedelta(minutes=6)
    runtime.clock = lambda: later
    stalled = pipeline.find_stalled_work(runtime)
    assert (stalled.item_ids, stalled.decide_ids) == ((), (item_id,))  # to the decider

    assert pipeline.store_item(runtime, item_id) == stored  # stored already: nothing fetched
    assert len(httpserver.log) == fetches
    result = pipeline.decide_item(runtime, item_id)
    assert result.outcome == "development" and result.alert_id is not None
    assert pipeline.decide_item(runtime, item_id).outcome == "development"  # redelivered
    with transaction(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Article)) == 1
        assert session.scalar(select(func.count()).select_from(Alert)) == 1


def test_the_decider_takes_the_term_vector_the_storing_process_prepared(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storing writes the article's term vector; the decision reads and deletes it and
    computes none of its own (here it could not: computing one raises)."""
    [item_id] = _development_setup(runtime, httpserver)
    stored = pipeline.store_item(runtime, item_id)
    assert isinstance(stored, pipeline.Stored)
    with transaction(runtime.sessions) as session:
        assert session.get(PreparedView, stored.article_id) is not None

    def computed(*_args: object) -> None:
        raise AssertionError("the decider computed a term vector")

    monkeypatch.setattr(tracker_module, "article_view", computed)
    result = pipeline.decide_item(runtime, item_id)
    assert result.outcome == "development" and result.alert_id is not None
    with transaction(runtime.sessions) as session:
        assert session.get(PreparedView, stored.article_id) is None


def test_an_article_whose_view_cannot_be_prepared_is_stored_and_decided(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Preparing the term vector is help for the decider, not part of storing: when it
    fails, the article is stored without one and the decider computes its own."""
    [item_id] = _development_setup(runtime, httpserver)

    def broken(*_args: object) -> None:
        raise ValueError("a bug in the term vector")

    with monkeypatch.context() as patched:
        patched.setattr(processing, "prepare_view", broken)
        stored = pipeline.store_item(runtime, item_id)
    assert isinstance(stored, pipeline.Stored)
    with transaction(runtime.sessions) as session:
        assert session.get(PreparedView, stored.article_id) is None
    assert pipeline.decide_item(runtime, item_id).outcome == "development"


def test_a_view_prepared_under_other_knobs_is_not_used(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decider whose knobs differ from the storing process's (a rolling upgrade)
    computes its own view: the prepared one would not be the one its tracker makes."""
    [item_id] = _development_setup(runtime, httpserver)
    assert isinstance(pipeline.store_item(runtime, item_id), pipeline.Stored)
    config = runtime.trackers.config
    runtime.trackers = TrackerCache(
        dataclasses.replace(config, match=dataclasses.replace(config.match, lead_weight=2.5))
    )
    calls: list[str] = []
    compute = tracker_module.article_view

    def counted(title: str | None, text: str, match: MatchConfig) -> ArticleView:
        calls.append(text)
        return compute(title, text, match)

    monkeypatch.setattr(tracker_module, "article_view", counted)
    assert pipeline.decide_item(runtime, item_id).outcome == "development"
    assert len(calls) == 1


def test_waiting_for_a_decider_that_is_down_costs_a_stored_item_no_attempt(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    """A decider down for 48 minutes: each sweep sends the stored item to the decide
    queue again (its message may be lost), never back through a store run that would
    count an attempt, so the item is decided when the decider is back, not failed."""
    [item_id] = _development_setup(runtime, httpserver)
    assert isinstance(pipeline.store_item(runtime, item_id), pipeline.Stored)
    now = runtime.clock()
    for sweep in range(1, 9):
        at = now + timedelta(minutes=6 * sweep)
        runtime.clock = lambda at=at: at
        stalled = pipeline.find_stalled_work(runtime)
        assert (stalled.item_ids, stalled.decide_ids) == ((), (item_id,))
        for again in stalled.item_ids:  # what the tick's process_item runs would do
            pipeline.store_item(runtime, again)
    result = pipeline.decide_item(runtime, item_id)
    assert result.outcome == "development" and result.alert_id is not None


def test_a_decision_that_fails_every_run_fails_the_item_after_its_attempts(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decision runs are counted, so a bug in deciding one article cannot have the sweep
    retry it forever; the article stays stored."""
    [item_id] = _development_setup(runtime, httpserver)
    stored = pipeline.store_item(runtime, item_id)
    assert isinstance(stored, pipeline.Stored)

    def broken(self: object, article: object) -> None:
        raise ValueError("a bug in matching")

    monkeypatch.setattr(Tracker, "match", broken)
    runs, result = 0, None
    while result is None and runs < 20:  # unbounded, this would go on for ever
        try:
            result = pipeline.decide_item(runtime, item_id)
        except ValueError as exc:
            runs += 1
            pipeline.note_item_retry(runtime, item_id, error=repr(exc), retry_in=None)
    assert result is not None and result.outcome == "failed"
    assert runs == pipeline.MAX_ITEM_ATTEMPTS  # failed decisions alone: storing is not one
    with transaction(runtime.sessions) as session:
        item = session.get(Item, item_id)
        assert item is not None and item.status == "failed"
        assert item.error is not None and "a bug in matching" in item.error
        assert item.article_id == stored.article_id


def test_a_store_that_took_every_attempt_leaves_its_decision_all_of_its_own(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    """Store runs and failed decisions do not share one budget: an item stored on its
    last store attempt is decided, and another store run of it counts nothing."""
    [item_id] = _development_setup(runtime, httpserver)
    with transaction(runtime.sessions) as session:
        item = session.get(Item, item_id)
        assert item is not None
        item.attempts = pipeline.MAX_ITEM_ATTEMPTS - 1  # five failed store runs
    assert isinstance(pipeline.store_item(runtime, item_id), pipeline.Stored)
    assert isinstance(pipeline.store_item(runtime, item_id), pipeline.Stored)  # a repeat
    with transaction(runtime.sessions) as session:
        item = session.get(Item, item_id)
        assert item is not None and item.attempts == 0
    result = pipeline.decide_item(runtime, item_id)
    assert result.outcome == "development" and result.alert_id is not None


def test_a_decision_failing_past_celerys_retries_counts_one_attempt(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retryable failure (here the database's) continues the run it interrupted: Celery's
    retries count no attempt, and each sweep's round (a new run) costs the item one, so
    a decision that always fails so ends instead of looping."""
    [item_id] = _development_setup(runtime, httpserver)
    assert isinstance(pipeline.store_item(runtime, item_id), pipeline.Stored)

    def failing(self: object, article: object) -> None:
        raise OperationalError("deciding under story locks", None, RuntimeError("no stable story"))

    monkeypatch.setattr(Tracker, "match", failing)
    monkeypatch.setattr(tasks, "runtime", lambda: runtime)
    # Run eagerly, a task's retries run at once: one apply is one sweep's round, the
    # first run and its eight retries.
    for attempts in (1, 2):
        outcome = tasks.decide_item.apply(args=[item_id], throw=False)
        assert not outcome.successful()
        with transaction(runtime.sessions) as session:
            item = session.get(Item, item_id)
            assert item is not None and item.status == "new" and item.attempts == attempts


def test_a_copy_waits_for_its_originals_decision_then_counts_for_its_story(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    """Stored by two workers, the copy can reach the decider first: it waits (a retry)
    rather than be counted for no story."""
    page = _page("article-development.html")
    base = httpserver.url_for("").rstrip("/")
    _feed_with(
        httpserver,
        ("Kazakhstan's final report on the AZAL crash", f"{base}/a/report", "g1", "s"),
        ("Missile fragments brought down AZAL jet", f"{base}/b/copy", "g2", "s"),
    )
    httpserver.expect_request("/a/report").respond_with_data(page, content_type="text/html")
    copy = page.replace("Caspian Wire", "Metro Herald")
    httpserver.expect_request("/b/copy").respond_with_data(copy, content_type="text/html")
    original_item, copy_item = pipeline.poll_feed(runtime, "local").new_item_ids
    original = pipeline.store_item(runtime, original_item)
    copied = pipeline.store_item(runtime, copy_item)
    assert isinstance(original, pipeline.Stored) and isinstance(copied, pipeline.Stored)

    with pytest.raises(OriginalUndecided):
        pipeline.decide_item(runtime, copy_item)
    planned = pipeline.item_retry(OriginalUndecided("x"), 1, runtime.settings)
    assert planned is not None and planned[0].event == "item.wait_original"

    assert pipeline.decide_item(runtime, original_item).outcome == "development"
    assert pipeline.decide_item(runtime, copy_item).outcome == "duplicate"
    with transaction(runtime.sessions) as session:
        reports = session.scalars(select(StoryReport.article_id)).all()
    assert sorted(reports) == [original.article_id, copied.article_id]


def _report_and_rewrite(httpserver: HTTPServer) -> None:
    """A feed of two items: the development report, and a rewrite of it under another link,
    different enough (another lead paragraph) to pass the near-duplicate check."""
    base = httpserver.url_for("").rstrip("/")
    page = _page("article-development.html")
    _feed_with(
        httpserver,
        ("Report", f"{base}/a/report", "g1", "s"),
        ("Rewritten", f"{base}/b/rewrite", "g2", "s"),
    )
    rewritten = page.replace(
        "Kazakhstan's Transport Ministry on Thursday published the final report",
        "The final report, released on Thursday by the transport ministry of Kazakhstan, is out",
    )
    httpserver.expect_request("/a/report").respond_with_data(page, content_type="text/html")
    httpserver.expect_request("/b/rewrite").respond_with_data(rewritten, content_type="text/html")


def test_a_warm_worker_reads_what_another_learned_and_nothing_when_nothing_changed(
    tmp_path: Path, httpserver: HTTPServer, feed_toml: str
) -> None:
    """A tracker reads the rows of a story only when its change count moved: the second
    worker, warmed up before the first decides, still knows the development after."""
    _report_and_rewrite(httpserver)
    first = make_runtime(tmp_path / "one", feed_toml)
    database = first.settings.database_url
    second = make_runtime(tmp_path / "two", feed_toml, database_url=database)
    try:
        with transaction(second.sessions) as session:
            warm = second.trackers.current(session)  # loaded before the first decides
        report, rewrite = pipeline.poll_feed(first, "local").new_item_ids
        assert pipeline.process_item(first, report).outcome == "development"

        stored = pipeline.store_item(second, rewrite)
        assert isinstance(stored, pipeline.Stored)
        reads: list[str] = []
        read_rows = second.trackers._read_rows

        def counted(session: Session, tracker: Tracker, changed: list[str]) -> None:
            reads.extend(changed)
            read_rows(session, tracker, changed)

        second.trackers._read_rows = counted  # type: ignore[method-assign]
        assert pipeline.decide_item(second, rewrite).outcome in ("rehash", "duplicate")
        assert reads  # the first worker's rows, read past the second's cursors
        with transaction(second.sessions) as session:
            assert second.trackers.current(session) is warm  # synced, not rebuilt
            reads.clear()
            second.trackers.current(session)
        assert reads == []  # nothing changed since: no rows read
        with transaction(first.sessions) as session:
            assert session.scalar(select(func.count()).select_from(Alert)) == 1
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_two_workers_with_two_copies_make_one_alert_on_postgres(
    tmp_path: Path, httpserver: HTTPServer, feed_toml: str, postgres_url: str
) -> None:
    """Two runtimes (as two processes would have) race on two copies of one development."""
    _report_and_rewrite(httpserver)
    first = make_runtime(tmp_path / "one", feed_toml, database_url=postgres_url)
    second = make_runtime(tmp_path / "two", feed_toml, database_url=postgres_url)
    ids = pipeline.poll_feed(first, "local").new_item_ids
    results: dict[int, str] = {}
    barrier = threading.Barrier(2)

    def work(rt: Runtime, item_id: int) -> None:
        barrier.wait()
        for _ in range(5):
            try:
                results[item_id] = pipeline.process_item(rt, item_id).outcome
                return
            except Exception:
                time.sleep(0.2)

    threads = [
        threading.Thread(target=work, args=pair) for pair in zip((first, second), ids, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with transaction(first.sessions) as session:
        alerts = session.scalar(select(func.count()).select_from(Alert))
    first.close()
    second.close()
    assert alerts == 1
    assert sorted(results.values()) in (["development", "duplicate"], ["development", "rehash"])


@pytest.mark.postgres
def test_one_item_given_to_two_deciders_at_once_is_decided_once_on_postgres(
    tmp_path: Path, httpserver: HTTPServer, feed_toml: str, postgres_url: str
) -> None:
    """A decision's message delivered twice (a redelivery and the sweep's resend) reaches
    two deciding processes at once. The second waits on the item's row for the first's
    commit and finds it decided; it does not decide it again behind the story's lock
    (a second report counted, the outcome overwritten with "rehash")."""
    first = make_runtime(tmp_path / "one", feed_toml, database_url=postgres_url)
    second = make_runtime(tmp_path / "two", feed_toml, database_url=postgres_url)
    engine = create_engine(postgres_url)
    results: list[str] = []
    try:
        [item_id] = _development_setup(first, httpserver)
        assert isinstance(pipeline.store_item(first, item_id), pipeline.Stored)
        for rt in (first, second):  # both trackers loaded, as running deciders' are
            with transaction(rt.sessions) as session:
                rt.trackers.current(session)
        holder = engine.connect()
        holder.begin()
        holder.execute(text("select id from stories for update"))  # another decision's

        def decide(rt: Runtime) -> None:
            results.append(pipeline.decide_item(rt, item_id).outcome)

        threads = [threading.Thread(target=decide, args=(rt,)) for rt in (first, second)]
        for thread in threads:
            thread.start()
        waiting = "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
        deadline = time.monotonic() + 30
        with engine.connect() as probe:
            while probe.execute(text(waiting)).scalar() != 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        holder.rollback()  # both deciders wait on a lock: let them go
        holder.close()
        for thread in threads:
            thread.join(timeout=60)
        with transaction(first.sessions) as session:
            item = session.get(Item, item_id)
            assert item is not None and item.outcome == "development"
            article_reports = select(func.count()).where(StoryReport.article_id == item.article_id)
            assert session.scalar(article_reports) == 1
            assert session.scalar(select(func.count()).select_from(Alert)) == 1
    finally:
        first.close()
        second.close()
        engine.dispose()
    assert results == ["development", "development"]


def test_a_scheduled_page_retry_is_not_swept_before_it_is_due(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    [item_id] = _development_setup(runtime, httpserver)
    pipeline.note_item_retry(runtime, item_id, error="TransientFetchError: 429", retry_in=3600)
    start = runtime.clock()
    runtime.clock = lambda: start + timedelta(minutes=30)
    assert pipeline.find_stalled_work(runtime).item_ids == ()  # the retry is still ahead
    runtime.clock = lambda: start + timedelta(minutes=66)
    assert pipeline.find_stalled_work(runtime).item_ids == (item_id,)  # its message was lost
    with transaction(runtime.sessions) as session:
        item = session.get(Item, item_id)
        assert item is not None and item.error == "TransientFetchError: 429"


def test_very_long_urls_are_stored_under_a_unique_bounded_key() -> None:
    from worker.pipeline.copies import MAX_URL_KEY, storage_key  # noqa: PLC0415

    base = "https://news.example/" + "a" * 3000
    one, two = storage_key(base + "1"), storage_key(base + "2")
    assert len(one) <= MAX_URL_KEY and len(two) <= MAX_URL_KEY and one != two
    assert storage_key("https://news.example/short") == "https://news.example/short"


def test_stories_keep_their_known_as_of_in_the_database_and_a_new_date_rebuilds_them(
    tmp_path: Path,
) -> None:
    def runtime_with(known_as_of: str) -> Runtime:
        config = write_config(tmp_path, stories=f"known_as_of = {known_as_of}\n")
        environ = {"STORYWATCH_CONFIG_DIR": str(config), "STORYWATCH_DATA_DIR": str(tmp_path / "v")}
        runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
        pipeline.initialise(runtime)
        return runtime

    for day in ("2024-12-28", "2025-01-09"):
        runtime = runtime_with(day)
        try:
            with transaction(runtime.sessions) as session:
                tracker = runtime.trackers.current(session)
                dated = {tracker.story(i).known_as_of for i in tracker.story_ids}
        finally:
            runtime.close()
        assert dated == {datetime.fromisoformat(f"{day}T23:59:59.999999+00:00")}


def test_deliveries_share_one_client_per_process(runtime: Runtime) -> None:
    # A new client per delivery built an SSL context each time (the CA bundle read and
    # parsed): 7% of a worker's CPU in a burst of alerts.
    client = runtime.delivery_client()
    assert runtime.delivery_client() is client
    assert not client.is_closed
    runtime.close()
    assert client.is_closed


@pytest.mark.postgres
def test_a_decision_run_is_counted_when_its_pooled_connection_died_since_its_last_use(
    tmp_path: Path, httpserver: HTTPServer, feed_toml: str, postgres_url: str
) -> None:
    """PostgreSQL restarted a moment after the decider's last transaction: its pooled
    connections are dead and, used within a second, not pinged (worker.store.engine). The
    run's attempt is counted anyway (a failure there would be retried by Celery as the
    same run, never counted) and the item is decided."""
    rt = make_runtime(tmp_path, feed_toml, database_url=postgres_url)
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        [item_id] = _development_setup(rt, httpserver)
        assert isinstance(pipeline.store_item(rt, item_id), pipeline.Stored)
        with transaction(rt.sessions) as session:
            mine = session.execute(text("select pg_backend_pid()")).scalar_one()
        with engine.connect() as admin:
            admin.execute(text("select pg_terminate_backend(:pid)"), {"pid": mine})
        assert pipeline.decide_item(rt, item_id).outcome == "development"
        with transaction(rt.sessions) as session:
            item = session.get(Item, item_id)
            assert item is not None and item.attempts == 1
    finally:
        rt.close()
        engine.dispose()


# --- what libraries log while the pipeline works on a feed or an item names it: their
# stdlib records are rendered with the bound context (structlog's `merge_contextvars` in
# the formatter's pre-chain), so the context must be bound there, not only on our loggers.


class _Recorder(logging.Handler):
    """Keeps each record's message with the context bound when it was emitted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.getMessage(), structlog.contextvars.get_contextvars()))


@contextmanager
def _recording(name: str, level: int) -> Iterator[_Recorder]:
    logger = logging.getLogger(name)
    recorder, before = _Recorder(), logger.level
    logger.addHandler(recorder)
    logger.setLevel(level)
    try:
        yield recorder
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(before)


def test_the_extractors_own_warning_names_the_item_and_its_feed(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    page = f"{base}/empty"
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss(base, ("An empty page", page, "g1", "A summary too short to stand in."))
    )
    # A page with no text at all: trafilatura warns "discarding data" through its logger.
    httpserver.expect_request("/empty").respond_with_data(
        "<html><body></body></html>", content_type="text/html"
    )
    [item_id] = pipeline.poll_feed(runtime, "local").new_item_ids
    with _recording("trafilatura", logging.WARNING) as recorder:
        pipeline.store_item(runtime, item_id, page_attempts=1)
    assert recorder.seen, "trafilatura logged nothing: the test no longer tests anything"
    for message, context in recorder.seen:
        assert context.get("item_id") == item_id, message
        assert context.get("feed_id") == "local" and context.get("url") == page
    # Unbound afterwards: the next task's lines do not carry this item.
    assert "item_id" not in structlog.contextvars.get_contextvars()


def test_the_http_clients_own_lines_name_the_feed_being_polled(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/feed.xml").respond_with_data(rss(base))
    # httpx logs each request at INFO ("HTTP Request: GET ..."); the service keeps it at
    # WARNING, raised here to have a library line to look at.
    with _recording("httpx", logging.INFO) as recorder:
        pipeline.poll_feed(runtime, "local")
    assert recorder.seen, "httpx logged nothing: the test no longer tests anything"
    for message, context in recorder.seen:
        assert context.get("feed_id") == "local", message
        assert context.get("url") == httpserver.url_for("/feed.xml")
    assert "feed_id" not in structlog.contextvars.get_contextvars()
