"""An alert's follow-up: recipients the alert reached hear once, a while after the first
later report, how many other outlets reported its development and where."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from standardwebhooks import Webhook
from werkzeug import Request, Response

from tests.conftest import write_config
from tests.test_corroboration import serve_ten_outlets
from worker import pipeline
from worker.pipeline.corroborate import FOLLOW_UP_AFTER
from worker.settings import load_settings
from worker.store import feedback, schema
from worker.store.engine import transaction

SECRET = "whsec_" + "Zm9sbG93LXVwcy1hcmUtc2lnbmVkLXRvbw=="


def hooked_runtime(tmp_path: Path, base: str, more_destinations: str = "") -> pipeline.Runtime:
    """The embedded service's runtime: the ten outlets' feed, a signed webhook to
    `{base}/hook`, and `more_destinations`."""
    config = write_config(
        tmp_path,
        feeds=f'[[feeds]]\nid = "wire"\nurl = "{base}/feed.xml"\n',
        destinations='[[destinations]]\nid = "hook"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        'secret_env = "HOOK_SECRET"\n' + more_destinations,
    )
    settings = load_settings(
        {
            "STORYWATCH_CONFIG_DIR": str(config),
            "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
            "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
            "HOOK_URL": f"{base}/hook",
            "HOOK_SECRET": SECRET,
        },
        dotenv=False,
    )
    runtime = pipeline.open_runtime(settings)
    pipeline.initialise(runtime)
    return runtime


def test_later_reports_make_one_signed_update_after_the_alert(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    base = serve_ten_outlets(httpserver)
    received: list[tuple[dict[str, str], dict[str, object]]] = []

    def hook(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        payload = Webhook(SECRET).verify(request.get_data(), headers)
        received.append((headers, payload))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    quiet = '\n[[destinations]]\nid = "quiet"\nkind = "jsonl"\nupdates = false\n'
    runtime = hooked_runtime(tmp_path, base, more_destinations=quiet)
    try:
        first, *later = pipeline.poll_feed(runtime, "wire").new_item_ids
        alert = pipeline.process_item(runtime, first).alert_id
        assert alert is not None
        assert pipeline.deliver_alert(runtime, alert).delivered == 2
        for item_id in later:
            assert pipeline.process_item(runtime, item_id).alert_id is None
        assert pipeline.deliver_alert(runtime, alert).delivered == 0  # not due yet
        start = runtime.clock()
        runtime.clock = lambda: start + FOLLOW_UP_AFTER + timedelta(minutes=1)
        assert pipeline.deliver_alert(runtime, alert).delivered == 1
        assert pipeline.deliver_alert(runtime, alert).delivered == 0  # once
        with transaction(runtime.sessions) as session:
            rows = session.execute(
                select(schema.Delivery.destination_id, schema.Delivery.kind).order_by(
                    schema.Delivery.id
                )
            ).all()
    finally:
        runtime.close()
    assert [tuple(row) for row in rows] == [
        ("hook", "alert"),
        ("quiet", "alert"),
        ("hook", "update"),  # "quiet" said updates = false
    ]
    (alert_headers, original), (update_headers, update) = received
    assert original["type"] == "story.development" and original["id"] == alert
    assert update["type"] == "story.development.updated" and update["id"] == alert
    assert update_headers["webhook-id"] == f"{alert}_update" != alert_headers["webhook-id"]
    assert update["also_reported_by"] == 9
    links = update["also_reported"]
    assert isinstance(links, list) and len(links) == 9
    assert all(str(link["url"]).startswith(base) for link in links)


@pytest.mark.parametrize(("status", "after"), [(503, "pending"), (400, "dead")])
def test_no_update_before_its_alert_reached_the_destination(
    tmp_path: Path, httpserver: HTTPServer, status: int, after: str
) -> None:
    """503: the alert will be retried, its update waits. 400: the alert is dead, and so is
    its update (it would update nothing)."""
    base = serve_ten_outlets(httpserver)
    httpserver.expect_request("/hook", method="POST").respond_with_data("no", status=status)
    runtime = hooked_runtime(tmp_path, base)
    try:
        alert = None
        for item_id in pipeline.poll_feed(runtime, "wire").new_item_ids:
            alert = pipeline.process_item(runtime, item_id).alert_id or alert
        assert alert is not None
        start = runtime.clock()
        runtime.clock = lambda: start + timedelta(hours=2)
        summary = pipeline.deliver_alert(runtime, alert)
        with transaction(runtime.sessions) as session:
            update = session.execute(
                select(schema.Delivery.attempts, schema.Delivery.status).where(
                    schema.Delivery.kind == "update"
                )
            ).one()
    finally:
        runtime.close()
    # The alert was tried; its update, due as well, was not tried at all.
    assert summary.failed + summary.dead == 1
    assert tuple(update) == (0, after)


def _alert_then_later_reports(runtime: pipeline.Runtime, before_later: object = None) -> str:
    """The first outlet's alert, delivered; then the nine later reports of it."""
    first, *later = pipeline.poll_feed(runtime, "wire").new_item_ids
    alert = pipeline.process_item(runtime, first).alert_id
    assert alert is not None
    pipeline.deliver_alert(runtime, alert)
    if callable(before_later):
        before_later(alert)
    for item_id in later:
        assert pipeline.process_item(runtime, item_id).alert_id is None
    return alert


def _deliveries(runtime: pipeline.Runtime) -> list[tuple[str, str, str]]:
    with transaction(runtime.sessions) as session:
        rows = session.execute(
            select(
                schema.Delivery.destination_id, schema.Delivery.kind, schema.Delivery.status
            ).order_by(schema.Delivery.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_configured_console_can_opt_out_of_follow_ups_too(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    base = serve_ten_outlets(httpserver)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    console = '\n[[destinations]]\nid = "console"\nkind = "console"\nupdates = false\n'
    runtime = hooked_runtime(tmp_path, base, more_destinations=console)
    try:
        _alert_then_later_reports(runtime)
        rows = _deliveries(runtime)
    finally:
        runtime.close()
    assert [(d, kind) for d, kind, _ in rows] == [
        ("hook", "alert"),
        ("console", "alert"),
        ("hook", "update"),
    ]


def test_a_muted_story_sends_no_follow_up(tmp_path: Path, httpserver: HTTPServer) -> None:
    base = serve_ten_outlets(httpserver)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    runtime = hooked_runtime(tmp_path, base)

    def mute(alert: object) -> None:
        with transaction(runtime.sessions) as session:
            story = session.scalar(select(schema.Alert.story_id).where(schema.Alert.id == alert))
            assert story is not None
            feedback.mute(session, story, None, runtime.clock())

    try:
        _alert_then_later_reports(runtime, before_later=mute)
        rows = _deliveries(runtime)
        with transaction(runtime.sessions) as session:
            counted = session.scalar(select(func.count()).select_from(schema.DevelopmentSource))
    finally:
        runtime.close()
    assert rows == [("hook", "alert", "delivered")]
    assert counted == 9  # the later reports are still recorded on the development


def test_pruning_keeps_an_alerts_delivery_until_its_follow_up_is_sent(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    base = serve_ten_outlets(httpserver)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    runtime = hooked_runtime(tmp_path, base)
    try:
        alert = _alert_then_later_reports(runtime)
        start = runtime.clock()
        runtime.clock = lambda: start + timedelta(minutes=10)
        runtime.settings = dataclasses.replace(runtime.settings, keep_deliveries_days=0.0001)
        assert pipeline.prune(runtime).deliveries == 0  # the update is still to be sent
        runtime.clock = lambda: start + FOLLOW_UP_AFTER + timedelta(minutes=1)
        assert pipeline.deliver_alert(runtime, alert).delivered == 1
        assert _deliveries(runtime)[-1] == ("hook", "update", "delivered")
        runtime.clock = lambda: start + FOLLOW_UP_AFTER + timedelta(minutes=30)
        assert pipeline.prune(runtime).deliveries == 2  # both sent: both may go
    finally:
        runtime.close()
