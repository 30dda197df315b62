"""Digests: one message per period for a destination, every alert in it, none lost."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from standardwebhooks import Webhook

from tests.conftest import write_config
from tests.outbox import add_alerts
from worker import pipeline
from worker.alerts.digest import digest_as_alert, next_digest_time
from worker.alerts.payloads import slack_payload
from worker.pipeline.runtime import Runtime
from worker.settings import Settings, load_settings
from worker.store import schema
from worker.store.engine import transaction

SECRET = "whsec_ZGlnZXN0LXRlc3Qtc2VjcmV0LXZhbHVl"


def test_digest_slots_are_aligned_so_every_worker_agrees() -> None:
    now = datetime(2026, 11, 20, 9, 31, 17, tzinfo=UTC)
    assert next_digest_time(now, 15) == datetime(2026, 11, 20, 9, 45, tzinfo=UTC)
    assert next_digest_time(datetime(2026, 11, 20, 9, 45, tzinfo=UTC), 15) == datetime(
        2026, 11, 20, 10, 0, tzinfo=UTC
    )


def digest_settings(
    tmp_path: Path, httpserver: HTTPServer, *, extra: str = "", database_url: str | None = None
) -> Settings:
    """A webhook destination "daily" with 15-minute digests (plus `extra` keys)."""
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "daily"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        f'secret_env = "HOOK_SECRET"\ndigest_every_minutes = 15\n{extra}',
    )
    environ = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
        "HOOK_URL": httpserver.url_for("/hook"),
        "HOOK_SECRET": SECRET,
    }
    if database_url:
        environ["STORYWATCH_DATABASE_URL"] = database_url
    return load_settings(environ, dotenv=False)


@pytest.fixture
def digest_runtime(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Runtime]:
    runtime = pipeline.open_runtime(digest_settings(tmp_path, httpserver))
    pipeline.initialise(runtime)
    yield runtime
    runtime.close()


def test_due_alerts_of_a_digest_destination_go_out_as_one_signed_message(
    digest_runtime: Runtime, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    ids = add_alerts(digest_runtime, 3, "daily")
    summary = pipeline.deliver_alert(digest_runtime, ids[0])
    assert summary.delivered == 1
    assert len(httpserver.log) == 1
    request = httpserver.log[0][0]
    payload = Webhook(SECRET).verify(request.get_data(), dict(request.headers))
    assert payload["type"] == "story.digest"
    assert sorted(a["id"] for a in payload["alerts"]) == sorted(ids)
    assert request.headers["webhook-id"] == payload["id"]
    with transaction(digest_runtime.sessions) as session:
        statuses = set(session.scalars(select(schema.Delivery.status)))
    assert statuses == {"delivered"}
    # The other alerts' own tasks find nothing left to send.
    assert pipeline.deliver_alert(digest_runtime, ids[1]).delivered == 0
    assert len(httpserver.log) == 1


def _two_workers_at_a_slot_boundary(
    tmp_path: Path, httpserver: HTTPServer, database_url: str | None
) -> list[dict[str, object]]:
    """Two workers each run the task of one of a digest destination's two due alerts; the
    first claims its delivery, then waits for a rate-limit token (about 1 s), and the
    second runs meanwhile. Returns the digests the receiver got."""
    settings = digest_settings(
        tmp_path, httpserver, extra="max_per_second = 1.0\n", database_url=database_url
    )
    first, second = pipeline.open_runtime(settings), pipeline.open_runtime(settings)
    try:
        pipeline.initialise(first)
        httpserver.expect_request("/hook").respond_with_data("ok")
        ids = add_alerts(first, 2, "daily")
        first.limiter.reserve("daily", 1.0)  # its next message must wait about a second
        worker = threading.Thread(target=pipeline.deliver_alert, args=(first, ids[0]))
        worker.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with transaction(first.sessions) as session:
                leased = session.scalar(
                    select(schema.Delivery.id)
                    .join(schema.Alert, schema.Alert.id == schema.Delivery.alert_id)
                    .where(schema.Alert.id == ids[0], schema.Delivery.lease_until.is_not(None))
                )
            if leased is not None:
                break
            time.sleep(0.01)
        assert worker.is_alive(), "the first worker must still be waiting for its token"
        pipeline.deliver_alert(second, ids[1])
        worker.join(timeout=30)
        assert not worker.is_alive()
        with transaction(first.sessions) as session:
            assert set(session.scalars(select(schema.Delivery.status))) == {"delivered"}
        return [Webhook(SECRET).verify(r.get_data(), dict(r.headers)) for r, _ in httpserver.log]
    finally:
        first.close()
        second.close()


def test_two_workers_at_a_slot_boundary_send_one_digest(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    sent = _two_workers_at_a_slot_boundary(tmp_path, httpserver, None)
    assert [len(p["alerts"]) for p in sent] == [2]  # not two digests of one


@pytest.mark.postgres
def test_two_workers_at_a_slot_boundary_send_one_digest_on_postgres(
    tmp_path: Path, httpserver: HTTPServer, postgres_url: str
) -> None:
    sent = _two_workers_at_a_slot_boundary(tmp_path, httpserver, postgres_url)
    assert [len(p["alerts"]) for p in sent] == [2]


def test_a_failed_digest_is_retried_with_every_alert_in_it(
    digest_runtime: Runtime, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request("/hook").respond_with_data("down", status=503)
    httpserver.expect_oneshot_request("/hook").respond_with_data("ok")
    ids = add_alerts(digest_runtime, 2, "daily")
    first = pipeline.deliver_alert(digest_runtime, ids[0])
    assert first.failed == 1 and first.next_attempt_at is not None
    later = first.next_attempt_at + timedelta(seconds=1)
    digest_runtime.clock = lambda: later
    assert pipeline.deliver_alert(digest_runtime, ids[1]).delivered == 1
    sent = [Webhook(SECRET).verify(r.get_data(), dict(r.headers)) for r, _ in httpserver.log]
    assert [len(p["alerts"]) for p in sent] == [2, 2]
    assert sent[0]["id"] == sent[1]["id"]  # same alerts, same webhook-id: receivers dedupe


def test_a_readable_digest_names_each_story_and_fact() -> None:
    from worker.alerts.payloads import sample_alert  # noqa: PLC0415

    alerts = [sample_alert(), sample_alert()]
    digest = digest_as_alert(alerts, datetime.now(UTC))
    assert digest.story_title.startswith("2 new developments")
    assert len(digest.new_facts) == 2 and digest.id.startswith("dgst_")
    # In Slack: the header, one section per listed alert, the context; no article line.
    blocks = slack_payload(digest)["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "context"]
    assert "Untitled article" not in json.dumps(blocks)


def test_developments_for_a_digest_destination_wait_for_the_next_slot(
    digest_runtime: Runtime, httpserver: HTTPServer
) -> None:
    page = (Path(__file__).parent / "fixtures" / "site" / "article-development.html").read_text()
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/feed.xml").respond_with_data(
        f"<rss version='2.0'><channel><title>t</title><item><title>Report</title>"
        f"<link>{base}/a</link><guid>g</guid></item></channel></rss>"
    )
    httpserver.expect_request("/a").respond_with_data(page, content_type="text/html")
    with transaction(digest_runtime.sessions) as session:
        session.add(schema.Feed(id="f", url=f"{base}/feed.xml", poll_every_seconds=60))
    digest_runtime.settings = replace(digest_runtime.settings, allow_private_networks=True)
    [item_id] = pipeline.poll_feed(digest_runtime, "f").new_item_ids
    before = digest_runtime.clock()
    result = pipeline.process_item(digest_runtime, item_id)
    assert result.alert_id is not None
    with transaction(digest_runtime.sessions) as session:
        delivery = session.scalars(select(schema.Delivery)).one()
    assert delivery.next_attempt_at == next_digest_time(before, 15)
    assert pipeline.deliver_alert(digest_runtime, result.alert_id).delivered == 0  # not yet


def test_an_unforeseen_error_while_sending_a_digest_is_a_failed_attempt(
    digest_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every alert of the digest is recorded failed (retried, then dead), none left leased
    for the sweep to re-queue without counting an attempt."""

    def library_bug(*_: object, **__: object) -> None:
        raise RuntimeError("signing library bug")

    monkeypatch.setattr("worker.delivery.digest.post_signed", library_bug)
    ids = add_alerts(digest_runtime, 2, "daily")
    summary = pipeline.deliver_alert(digest_runtime, ids[0])
    assert summary.failed == 1
    with transaction(digest_runtime.sessions) as session:
        rows = session.scalars(select(schema.Delivery)).all()
    assert [(d.status, d.attempts, d.lease_until) for d in rows] == [("failed", 1, None)] * 2
    assert all("RuntimeError: signing library bug" in (d.last_error or "") for d in rows)
