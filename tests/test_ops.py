"""Operator commands against state built by the real pipeline and real local servers.

A feed whose server answered 500 five times in a row, and a webhook destination whose
receiver refused an alert with 400 (dead at once): `storywatch status` shows both and
exits 1; `alerts retry --dead` puts the dead delivery back in the outbox and enqueues it;
`alerts test` reaches a local receiver with a signature `standardwebhooks` verifies. The
commands run in a subprocess, as an operator runs them, so Celery's process-wide
configuration never leaks between tests.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from standardwebhooks import Webhook
from werkzeug import Request, Response

from tests.conftest import REPO, write_config
from worker import pipeline
from worker.pipeline.runtime import Runtime
from worker.settings import load_settings
from worker.store import ops
from worker.store.engine import transaction
from worker.store.schema import Delivery

SITE = Path(__file__).parent / "fixtures" / "site"
SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLW9wZXJhdG9yLWNvbW1hbmRz"
RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title>
<link>{base}/</link><description>d</description><item><title>Report</title>
<link>{base}/a/report</link><guid isPermaLink="false">g1</guid><description>s</description>
</item></channel></rss>"""
# The operator commands as `storywatch` will dispatch them once cli.py registers them.
ENTRY = (
    "import argparse, sys\n"
    "from worker.cli import ops as cli_ops\n"
    "parser = argparse.ArgumentParser(prog='storywatch')\n"
    "cli_ops.register(parser.add_subparsers(dest='command', required=True))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args, []))\n"
)


@dataclass
class Service:
    """A configured storywatch whose state came from the pipeline."""

    runtime: Runtime
    environ: dict[str, str]
    root: Path
    alert_id: str

    def run(self, *argv: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.environ, **extra_env, "PYTHONPATH": str(REPO)}
        return subprocess.run(
            [sys.executable, "-c", ENTRY, *argv],
            cwd=self.root,  # no stray .env from the repository
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def receiver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def build_service(
    root: Path, site: HTTPServer, receiver: HTTPServer, database_url: str | None = None
) -> Service:
    """Feed `broken` failed 5 times (HTTP 500); alert delivery to `refusing` is dead (400)."""
    base = site.url_for("").rstrip("/")
    feeds = (
        f'[[feeds]]\nid = "local"\nurl = "{base}/feed.xml"\npoll_every_seconds = 60\n\n'
        f'[[feeds]]\nid = "broken"\nurl = "{base}/broken.xml"\npoll_every_seconds = 60\n'
    )
    destinations = (
        f'[[destinations]]\nid = "refusing"\nkind = "webhook"\n'
        f'url = "{receiver.url_for("/refusing")}"\nsecret_env = "TEST_SECRET"\n\n'
        f'[[destinations]]\nid = "receiver"\nkind = "webhook"\n'
        f'url = "{receiver.url_for("/hook")}"\nsecret_env = "TEST_SECRET"\nstories = ["none"]\n'
    )
    config = write_config(
        root, feeds=feeds, destinations=destinations, stories=_route_nothing_story()
    )
    environ = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(root / "var"),
        "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
        "STORYWATCH_LOG_LEVEL": "WARNING",
        "TEST_SECRET": SECRET,
    }
    if database_url:
        environ["STORYWATCH_DATABASE_URL"] = database_url
    runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
    pipeline.initialise(runtime)

    site.expect_request("/broken.xml").respond_with_data("down", status=500)
    site.expect_request("/feed.xml").respond_with_data(RSS.format(base=base))
    site.expect_request("/a/report").respond_with_data(
        (SITE / "article-development.html").read_text(encoding="utf-8"),
        content_type="text/html",
    )
    receiver.expect_request("/refusing").respond_with_data("bad request", status=400)
    for _ in range(5):
        assert pipeline.poll_feed(runtime, "broken").status == "error"
    [item_id] = pipeline.poll_feed(runtime, "local").new_item_ids
    result = pipeline.process_item(runtime, item_id)
    assert result.outcome == "development" and result.alert_id is not None
    assert pipeline.deliver_alert(runtime, result.alert_id).dead == 1
    return Service(runtime, environ, root, result.alert_id)


def _route_nothing_story() -> str:
    # A keyword-only story named "none" so the `receiver` destination is routed no alert
    # from the pipeline: it exists for `alerts test` only.
    return '[[stories]]\nid = "none"\nkeywords = ["zzzqqxnotaword"]\n'


@pytest.fixture
def service(tmp_path: Path, httpserver: HTTPServer, receiver: HTTPServer) -> Iterator[Service]:
    svc = build_service(tmp_path, httpserver, receiver)
    yield svc
    svc.runtime.close()


def test_status_marks_the_failing_feed_stale_and_the_dead_destination(service: Service) -> None:
    done = service.run("status", "--json")
    assert done.returncode == 1, done.stderr  # a stale feed or a dead delivery: exit 1
    assert done.stdout.startswith("{"), done.stderr
    report = json.loads(done.stdout)
    feeds = {feed["id"]: feed for feed in report["feeds"]}
    broken, local = feeds["broken"], feeds["local"]
    assert broken["stale"] and broken["stale_reason"] == "never reached (5 failed poll(s))"
    assert (broken["reachable"], local["reachable"], report["feeds_reachable"]) == (False, True, 1)
    assert (broken["error_count"], broken["last_status"]) == (5, 500)
    assert "500" in broken["last_error"] and broken["last_success_at"] is None
    assert not local["stale"] and local["items_last_poll"] == local["items_total"] == 1
    destinations = {d["id"]: d for d in report["destinations"]}
    assert destinations["refusing"]["dead"] == 1
    assert destinations["receiver"] == {
        "id": "receiver",
        "configured": True,
        "pending": 0,
        "failed": 0,
        "dead": 0,
        "delivered": 0,
        "oldest_waiting_seconds": None,
    }
    [host] = report["hosts"]["hosts"]
    assert host["host"] == "localhost" and host["articles"] == 1
    assert host["extraction_fallback_rate"] == 0.0 and host["items_failed"] == 0
    assert report["totals"] == {"items": {"development": 1}, "developments": 1}
    assert report["healthy"] is False

    table = service.run("status")
    assert table.returncode == 1
    assert "STALE: never reached (5 failed poll(s))" in table.stdout
    assert "FEEDS (2, 1 stale; 1 of 2 feeds reachable)" in table.stdout
    assert (
        "ATTENTION: 1 of 2 feeds reachable, 1 stale feed(s), 1 dead delivery(ies)" in table.stdout
    )


def test_alerts_list_shows_the_dead_delivery_and_why(service: Service) -> None:
    done = service.run("alerts", "list", "--status", "dead", "--json")
    assert done.returncode == 0, done.stderr
    [alert] = json.loads(done.stdout)
    assert alert["id"] == service.alert_id and alert["article"]["url"].endswith("/a/report")
    [delivery] = alert["deliveries"]
    assert delivery["destination"] == "refusing" and delivery["status"] == "dead"
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 400
    assert "HTTP 400" in delivery["last_error"]
    none = service.run("alerts", "list", "--status", "pending", "--json")
    assert json.loads(none.stdout) == []


def test_retry_dead_moves_dead_to_pending_and_enqueues_on_the_embedded_broker(
    service: Service,
) -> None:
    done = service.run("alerts", "retry", "--dead")
    assert done.returncode == 0, done.stderr
    assert "moved 1 delivery(ies) of 1 alert(s) back to pending" in done.stdout
    assert "enqueued storywatch.deliver_alert for 1 alert(s)" in done.stdout
    with transaction(service.runtime.sessions) as session:
        delivery = session.scalars(select(Delivery)).one()
        assert (delivery.status, delivery.attempts) == ("pending", 0)
        assert delivery.next_attempt_at <= service.runtime.clock()
    # The message is in kombu's SQLAlchemy transport, waiting for a worker.
    broker = sqlite3.connect(service.root / "var" / "broker.db")
    try:
        [(payloads,)] = broker.execute("select count(*) from kombu_message").fetchall()
    finally:
        broker.close()
    assert payloads == 1
    # The sweep would find it too: it is pending and due.
    assert pipeline.find_stalled_work(service.runtime).alert_ids == (service.alert_id,)
    again = service.run("alerts", "retry", "--dead")
    assert "nothing to retry" in again.stdout


def test_retry_with_the_broker_down_says_the_sweep_will_deliver(service: Service) -> None:
    done = service.run(
        "alerts", "retry", service.alert_id, STORYWATCH_REDIS_URL="redis://127.0.0.1:9/0"
    )
    assert done.returncode == 0, done.stderr
    assert "could not reach the broker" in done.stdout
    assert "sweep" in done.stdout
    with service.runtime.sessions() as session:
        assert session.scalars(select(Delivery.status)).one() == "pending"


def test_retry_of_an_unknown_alert_exits_1(service: Service) -> None:
    done = service.run("alerts", "retry", "alrt_nosuchalert")
    assert done.returncode == 1 and "no alert alrt_nosuchalert" in done.stderr


def test_alerts_test_reaches_the_receiver_with_a_verifiable_signature(
    service: Service, receiver: HTTPServer
) -> None:
    seen: list[Request] = []

    def accept(request: Request) -> Response:
        seen.append(request)
        return Response("ok", status=200)

    receiver.expect_request("/hook", method="POST").respond_with_handler(accept)
    done = service.run("alerts", "test", "receiver")
    assert done.returncode == 0, done.stderr
    assert "delivered to receiver (webhook) (HTTP 200)" in done.stdout
    [request] = seen
    payload = Webhook(SECRET).verify(request.get_data(), dict(request.headers))
    assert payload["story"]["title"] == "storywatch test alert"
    assert payload["id"].startswith("test_") and payload["id"] == request.headers["webhook-id"]


def test_alerts_test_reports_a_refusal_and_exits_1(service: Service) -> None:
    done = service.run("alerts", "test", "refusing")
    assert done.returncode == 1
    assert "failed (HTTP 400), permanent" in done.stdout


def test_alerts_test_rejects_an_unknown_destination(service: Service) -> None:
    done = service.run("alerts", "test", "nowhere")
    assert done.returncode == 2 and "known: console, receiver, refusing" in done.stderr


def test_health_command_checks_the_database_and_redis(service: Service) -> None:
    done = service.run("health")
    assert done.returncode == 0 and json.loads(done.stdout)["checks"] == {"database": "ok"}
    down = service.run("health", STORYWATCH_REDIS_URL="redis://127.0.0.1:9/0")
    body = json.loads(down.stdout)
    assert down.returncode == 1 and body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] != "ok"


def test_stale_rule_counts_silence_from_creation_and_spares_disabled_feeds(
    service: Service,
) -> None:
    from datetime import timedelta  # noqa: PLC0415

    now = service.runtime.clock()
    with service.runtime.sessions() as session:
        report = ops.status_report(session, now)
        later = ops.status_report(session, now + timedelta(hours=2))
    assert [f.id for f in report.stale_feeds] == ["broken"]
    # Two hours without success is past max(3 x 60 s, 1 h) for the working feed too.
    assert {f.id for f in later.stale_feeds} == {"broken", "local"}
    assert "no success for" in (later.feeds[1].stale_reason or "")


@pytest.mark.postgres
def test_status_on_postgres(
    tmp_path: Path, httpserver: HTTPServer, receiver: HTTPServer, postgres_url: str
) -> None:
    svc = build_service(tmp_path, httpserver, receiver, database_url=postgres_url)
    try:
        done = svc.run("status", "--json")
        assert done.returncode == 1, done.stderr
        report = json.loads(done.stdout)
        broken = next(feed for feed in report["feeds"] if feed["id"] == "broken")
        assert broken["stale"] and broken["error_count"] == 5
        assert {d["id"]: d["dead"] for d in report["destinations"]}["refusing"] == 1
        retried = svc.run("alerts", "retry", "--dead")
        assert "moved 1 delivery(ies)" in retried.stdout
    finally:
        svc.runtime.close()
