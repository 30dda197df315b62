"""Feeds added on the desk (or by OPML import) and stopped there, against the real poller
and a local feed server: stopping forgets what the feed held back, adding the address again
is a new subscription, and no address ends up polled by two feeds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.test_cli import storywatch
from tests.test_feed_edges import cli_env, dated_rss, items_of
from tests.test_pipeline import feed_row, make_runtime
from worker import pipeline
from worker.feeds.discover import Outline
from worker.pipeline import desk, polling
from worker.pipeline.runtime import Runtime
from worker.store import subscriptions
from worker.store.engine import transaction

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def runtime(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Runtime]:
    """One feeds.toml feed ("wire"); the desk adds the others."""
    wire = httpserver.url_for("/wire.xml")
    rt = make_runtime(tmp_path, f'[[feeds]]\nid = "wire"\nurl = "{wire}"\n')
    yield rt
    rt.close()


def _add(runtime: Runtime, url: str) -> desk.Imported:
    return desk.import_outlines(runtime.sessions, [Outline(url, None)], runtime.clock())


def _stop(runtime: Runtime, feed_id: str) -> desk.Refused | None:
    return desk.stop_watching(runtime.sessions, feed_id)


def test_a_stopped_desk_feed_added_again_is_polled_afresh_and_lists_what_it_held(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/big.xml").respond_with_data(dated_rss(base, 450, newest=NOW))
    [feed] = _add(runtime, f"{base}/big.xml").added
    first = pipeline.poll_feed(runtime, feed.feed_id)
    assert len(first.new_item_ids) == 100 and feed_row(runtime, feed.feed_id).held_items == 350

    assert _stop(runtime, feed.feed_id) is None
    assert [i.status for i in items_of(runtime)] == ["new"] * 100  # the 350 are forgotten
    assert _add(runtime, f"{base}/big.xml").added == (feed,)  # the same feed, again

    # The same bytes as before: without its validators and body hash forgotten, this
    # poll would be "unchanged" and the 350 never listed again.
    again = pipeline.poll_feed(runtime, feed.feed_id)
    assert again.status == "fetched" and feed_row(runtime, feed.feed_id).held_items > 0
    assert len({i.url for i in items_of(runtime)}) == 450


def test_a_desk_feed_that_was_gone_is_polled_again_when_added_again(
    runtime: Runtime, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_ordered_request("/gone.xml").respond_with_data("", status=410)
    httpserver.expect_ordered_request("/gone.xml").respond_with_data(dated_rss(base, 3, newest=NOW))
    [feed] = _add(runtime, f"{base}/gone.xml").added
    assert pipeline.poll_feed(runtime, feed.feed_id).status == "stopped"
    assert _stop(runtime, feed.feed_id) is None
    assert _add(runtime, f"{base}/gone.xml").added == (feed,)  # the site is back
    assert feed_row(runtime, feed.feed_id).stopped is None
    assert feed.feed_id in pipeline.claim_due_feeds(runtime)
    assert len(pipeline.poll_feed(runtime, feed.feed_id).new_item_ids) == 3


def test_a_feed_stopped_while_it_is_polled_holds_nothing_back(
    runtime: Runtime, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/big.xml").respond_with_data(dated_rss(base, 450, newest=NOW))
    [feed] = _add(runtime, f"{base}/big.xml").added
    parse = polling._parse

    def stopped_meanwhile(*args: object, **kwargs: object) -> object:
        assert _stop(runtime, feed.feed_id) is None
        return parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(polling, "_parse", stopped_meanwhile)
    pipeline.poll_feed(runtime, feed.feed_id)
    row = feed_row(runtime, feed.feed_id)
    assert not row.enabled and row.held_items == 0
    assert "held" not in {i.status for i in items_of(runtime)}


def test_an_address_is_never_polled_by_two_feeds(runtime: Runtime, httpserver: HTTPServer) -> None:
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/old.xml").respond_with_data(
        "", status=301, headers={"Location": f"{base}/new.xml"}
    )
    httpserver.expect_request("/new.xml").respond_with_data(dated_rss(base, 2, newest=NOW))
    [old] = _add(runtime, f"{base}/old.xml").added
    pipeline.poll_feed(runtime, old.feed_id)
    assert feed_row(runtime, old.feed_id).moved_to == f"{base}/new.xml"
    [(_, why)] = _add(runtime, f"{base}/new.xml").skipped
    assert why == f"already watched (as {old.feed_id})"

    assert _stop(runtime, old.feed_id) is None
    [new] = _add(runtime, f"{base}/new.xml").added  # its new address, now a feed of its own
    [(_, why)] = _add(runtime, f"{base}/old.xml").skipped
    assert why == f"it moved to {base}/new.xml, already watched (as {new.feed_id})"
    assert not feed_row(runtime, old.feed_id).enabled


def test_feeds_toml_feeds_are_the_files_to_start_and_stop(
    tmp_path: Path, runtime: Runtime, httpserver: HTTPServer
) -> None:
    refused = _stop(runtime, "wire")
    assert refused is not None and "listed in feeds.toml" in refused.reason
    assert refused.missing is False and _stop(runtime, "nope") == desk.Refused(
        "there is no feed 'nope'", missing=True
    )
    # The feed leaves feeds.toml: it is stopped already, and its address is the file's.
    left = make_runtime(tmp_path, "")
    try:
        assert _stop(left, "wire") is None and not feed_row(left, "wire").enabled
        [(_, why)] = _add(left, httpserver.url_for("/wire.xml")).skipped
        assert why == "feeds.toml's feed wire, which left the file: add it back there"
        env = cli_env(left)
        resumed = storywatch("feeds", "resume", "wire", cwd=left.settings.data_dir, env=env)
        assert resumed.returncode == 1 and "is not watched" in resumed.stderr
        with transaction(left.sessions) as session:
            assert subscriptions.resume(session, "wire", NOW) == "off"
        assert not feed_row(left, "wire").enabled
    finally:
        left.close()
