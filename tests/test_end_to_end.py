"""End to end: a real `storywatch` service polls a local feed and alerts a local receiver.

The site (feed and article pages) and the webhook receiver are real HTTP servers on
127.0.0.1. The feed holds a new development of a seed story, a rehash of facts the seeds
already hold, an off-topic plane crash, and a second copy of the development under another
URL. Exactly one signed alert must arrive: for the development, once. A broken feed next to
the good one must not stop the worker.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, create_engine, text
from standardwebhooks import Webhook
from werkzeug import Request, Response

from tests.conftest import SEED_CORPUS, write_config
from tests.service import log_size, service_env, start, stop, wait_for_quiet_ticks
from worker import pipeline
from worker.stories.corpus import build_stories
from worker.stories.folder import read_corpus

FIXTURES = Path(__file__).parent / "fixtures" / "site"
SECRET = "whsec_" + "c3Rvcnl3YXRjaC1lbmQtdG8tZW5kLXRlc3Qtc2VjcmV0"
DEVELOPMENT_PATHS = {
    "/caspian/azal-final-report",
    "/syndicated/world/2026/11/20/azal-report-russian-missile",
}
pytestmark = pytest.mark.slow


@dataclass
class Receiver:
    """A webhook receiver that keeps every request it accepted."""

    server: HTTPServer
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.server.url_for("/hooks/storywatch")

    def handle(self, request: Request) -> Response:
        with self.lock:
            self.requests.append((dict(request.headers), request.get_data()))
        return Response("accepted", status=202)


@pytest.fixture
def site(httpserver: HTTPServer) -> HTTPServer:
    base = httpserver.url_for("").rstrip("/")
    feed = (FIXTURES / "feed.xml").read_text(encoding="utf-8").replace("{base}", base)
    development = (FIXTURES / "article-development.html").read_text(encoding="utf-8")
    # The syndicated copy: the same wire text in another site's page and under another URL.
    syndicated = development.replace("Caspian Wire", "Metro Herald").replace(
        '<a href="/business">Business</a>', '<a href="/opinion">Opinion</a> <a href="/tv">TV</a>'
    )
    html = "text/html; charset=utf-8"
    httpserver.expect_request("/feed.xml").respond_with_data(
        feed, content_type="application/rss+xml"
    )
    httpserver.expect_request("/caspian/azal-final-report").respond_with_data(
        development, content_type=html
    )
    httpserver.expect_request(
        "/syndicated/world/2026/11/20/azal-report-russian-missile"
    ).respond_with_data(syndicated, content_type=html)
    httpserver.expect_request("/digest/azal-explainer").respond_with_data(
        (FIXTURES / "article-rehash.html").read_text(encoding="utf-8"), content_type=html
    )
    httpserver.expect_request("/north/cargo-crash-bethel").respond_with_data(
        (FIXTURES / "article-offtopic.html").read_text(encoding="utf-8"), content_type=html
    )
    httpserver.expect_request("/broken.xml").respond_with_data(
        "\x00\x01 this is { not <a feed", content_type="application/rss+xml"
    )
    httpserver.expect_request("/down.xml").respond_with_data("upstream error", status=500)
    return httpserver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    hook = Receiver(server)
    server.expect_request("/hooks/storywatch", method="POST").respond_with_handler(hook.handle)
    yield hook
    server.clear()
    if server.is_running():
        server.stop()


def _service_env(tmp_path: Path, site: HTTPServer, receiver: Receiver) -> dict[str, str]:
    feeds = f"""
[[feeds]]
id = "fixture-news"
url = "{site.url_for("/feed.xml")}"
poll_every_seconds = 2

[[feeds]]
id = "broken"
url = "{site.url_for("/broken.xml")}"
poll_every_seconds = 2

[[feeds]]
id = "down"
url = "{site.url_for("/down.xml")}"
poll_every_seconds = 2
"""
    destinations = """
[[destinations]]
id = "receiver"
kind = "webhook"
url_env = "E2E_WEBHOOK_URL"
secret_env = "E2E_WEBHOOK_SECRET"
"""
    config = write_config(tmp_path, feeds=feeds, destinations=destinations)
    env = service_env(
        config,
        tmp_path / "var",
        STORYWATCH_ALLOW_PRIVATE_NETWORKS="true",
        E2E_WEBHOOK_URL=receiver.url,
        E2E_WEBHOOK_SECRET=SECRET,
    )
    return env


def _wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path,
    query: Callable[[str], list[tuple[object, ...]]] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    state = ""
    if query is not None:
        items = query("select feed_id, key, status, outcome, attempts, error from items")
        deliveries = query("select alert_id, status, attempts, last_error from deliveries")
        state = f"items: {items}\ndeliveries: {deliveries}\n"
    warnings = (
        [
            line
            for line in log.read_text(errors="replace").splitlines()
            if '"level": "warning"' in line or '"level": "error"' in line or "Traceback" in line
        ]
        if log.exists()
        else []
    )
    pytest.fail(
        f"timed out waiting for {what}\n{state}warnings and errors:\n" + "\n".join(warnings[-30:])
    )


def _azal_story_id() -> str:
    # The only story of the Daily Mail document (004) is the Azerbaijan Airlines crash.
    stories = build_stories(read_corpus(SEED_CORPUS))
    [story] = [s for s in stories if s.documents == ("004_5c433f7db65221c3.txt",)] or [
        s for s in stories if "004_5c433f7db65221c3.txt" in s.documents
    ][:1]
    return story.id


def _check_outcome(
    query: Callable[[str], list[tuple[object, ...]]], receiver: Receiver, *, concurrent: bool
) -> None:
    outcomes = {
        str(key).removeprefix("guid:"): outcome
        for key, outcome in query("select key, outcome from items where feed_id = 'fixture-news'")
    }
    assert outcomes["digest-azal-explainer"] == "rehash"
    assert outcomes["north-cargo-crash-bethel"] == "unmatched"
    copies = sorted(
        str(outcomes[k]) for k in ("caspian-azal-final-report", "syndicated-azal-report")
    )
    # Two workers may fetch the two copies at the same moment: the second then cannot see
    # the first (not committed yet) as its original, and is decided under the story's lock
    # instead, where it is a report of the development. Either way: one development.
    assert copies == ["development", "duplicate"] or (
        concurrent and copies == ["development", "rehash"]
    ), copies

    assert len(receiver.requests) == 1, [json.loads(body) for _, body in receiver.requests]
    headers, body = receiver.requests[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    payload = Webhook(SECRET).verify(body, lowered)  # raises when the signature is wrong
    assert lowered["webhook-id"] == payload["id"]
    assert payload["type"] == "story.development"
    assert payload["story"]["id"] == _azal_story_id()
    assert any(payload["article"]["url"].endswith(p) for p in DEVELOPMENT_PATHS)
    assert 1 <= len(payload["new_facts"]) <= 3
    assert any(char.isdigit() for fact in payload["new_facts"] for char in fact)

    errors = dict(query("select id, error_count from feeds where id in ('broken', 'down')"))
    assert errors["broken"] >= 1 and errors["down"] >= 1


def test_embedded_service_alerts_once_for_a_new_development(
    tmp_path: Path, site: HTTPServer, receiver: Receiver
) -> None:
    env = _service_env(tmp_path, site, receiver)
    log = tmp_path / "service.log"
    database = tmp_path / "var" / "storywatch.db"

    def query(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(database, timeout=30) as connection:
            return connection.execute(sql).fetchall()

    def settled() -> bool:
        if not database.exists():
            return False
        try:
            pending = query("select count(*) from items where status = 'new'")[0][0]
            seen = query("select count(*) from items where feed_id = 'fixture-news'")[0][0]
            undelivered = query(
                "select count(*) from deliveries where kind = 'alert' and status != 'delivered'"
            )[0][0]
        except sqlite3.OperationalError:  # schema not created yet
            return False
        return seen == 4 and pending == 0 and undelivered == 0

    service = start(["run"], env, tmp_path)
    try:
        _wait_for(settled, 120, "all items processed and alerts delivered", log, query)
        wait_for_quiet_ticks(log, log_size(log))  # nothing left that could alert again
        # `run` serves the story desk beside the worker, on the same database.
        desk = f"http://127.0.0.1:{env['STORYWATCH_WEB_PORT']}"
        alerts = httpx.get(f"{desk}/api/alerts", timeout=10).json()
        assert {a["id"] for a in alerts} == {str(row[0]) for row in query("select id from alerts")}
        assert httpx.get(f"{desk}/", timeout=10).status_code == 200
    finally:
        stop([service])
    _check_outcome(query, receiver, concurrent=False)


@dataclass
class Distributed:
    """The distributed service's shared parts for a test: its environment (Redis and
    PostgreSQL, the database initialised) and reads of its database."""

    env: dict[str, str]
    engine: Engine

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]

    def settled(self) -> bool:
        """Every item of the fixture feed judged and every alert delivered."""
        pending = self.query("select count(*) from items where status = 'new'")[0][0]
        seen = self.query("select count(*) from items where feed_id = 'fixture-news'")[0][0]
        undelivered = self.query(
            "select count(*) from deliveries where kind = 'alert' and status != 'delivered'"
        )[0][0]
        return seen == 4 and pending == 0 and undelivered == 0


@pytest.fixture
def distributed(
    tmp_path: Path, site: HTTPServer, receiver: Receiver, redis_url: str, postgres_url: str
) -> Iterator[Distributed]:
    env = _service_env(tmp_path, site, receiver)
    env.update(STORYWATCH_REDIS_URL=redis_url, STORYWATCH_DATABASE_URL=postgres_url)
    init = subprocess.run(  # noqa: PLW1510 - the return code is asserted below
        [sys.executable, "-m", "worker", "init"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr.decode(errors="replace")[-3000:]
    engine = create_engine(postgres_url)
    yield Distributed(env, engine)
    engine.dispose()


@pytest.mark.redis
@pytest.mark.postgres
def test_distributed_service_on_redis_with_two_workers(
    tmp_path: Path, receiver: Receiver, distributed: Distributed
) -> None:
    env, query = distributed.env, distributed.query
    log = tmp_path / "service.log"
    processes = [
        start(["worker", "--concurrency=1", f"--hostname=w{n}@%h"], env, tmp_path) for n in (1, 2)
    ]
    processes.append(start(["beat"], env, tmp_path))
    try:
        _wait_for(distributed.settled, 150, "all items processed and alerts delivered", log, query)
        wait_for_quiet_ticks(log, log_size(log))  # nothing left that could alert again
        workers = {
            json.loads(line).get("worker")
            for line in log.read_text(errors="replace").splitlines()
            if line.startswith("{") and '"task": "storywatch.' in line
        }
    finally:
        stop(processes)
    _check_outcome(query, receiver, concurrent=True)
    # Both worker processes took tasks from the shared Redis queue.
    assert {w.split("@")[0] for w in workers if w} == {"w1", "w2"}


# Fault injection for the next test, loaded by the worker's interpreter at start: deciding
# the rehash article ends its process at once, as the kernel's out-of-memory killer or a
# crash in a C extension would. Nothing else changes.
_KILLING_DECISION = """
import os

from worker.pipeline import deciding

_decide = deciding._decide_and_record


def _killing(runtime, session, row, article, *rest):
    if "azal-explainer" in (article.url or ""):
        os._exit(70)
    return _decide(runtime, session, row, article, *rest)


deciding._decide_and_record = _killing
"""


@pytest.mark.redis
@pytest.mark.postgres
def test_a_decision_that_kills_its_process_fails_its_item_and_stalls_nothing(
    tmp_path: Path, receiver: Receiver, distributed: Distributed
) -> None:
    """The broker hands a message back when the process running it dies (acks_late,
    reject_on_worker_lost), with no error recorded anywhere. Each run of a decision is
    counted before it starts, so the one article whose decision kills its process ends
    `failed` after its attempts, with its article kept, instead of killing the worker's
    processes for ever; every other item is decided and the development alerted once."""
    env, query = distributed.env, distributed.query
    injected = tmp_path / "inject"
    injected.mkdir()
    (injected / "sitecustomize.py").write_text(_KILLING_DECISION)
    log = tmp_path / "service.log"
    paths = [str(injected), *filter(None, [env.get("PYTHONPATH")])]
    worker_env = {**env, "PYTHONPATH": os.pathsep.join(paths)}
    processes = [
        start(["worker", "--concurrency=1", "--hostname=w@%h"], worker_env, tmp_path),
        start(["beat"], env, tmp_path),
    ]
    try:
        _wait_for(
            distributed.settled, 180, "every item settled and the alert delivered", log, query
        )
        alive = all(process.poll() is None for process in processes)
    finally:
        stop(processes)
    assert alive  # the worker's main process outlived every killed pool process
    [(status, outcome, attempts, error, article)] = query(
        "select status, outcome, attempts, error, article_id from items"
        " where key = 'guid:digest-azal-explainer'"
    )
    assert (status, outcome) == ("failed", "failed"), (status, outcome, error)
    assert attempts == pipeline.MAX_ITEM_ATTEMPTS + 1  # six runs, the seventh refused
    assert error is not None and "no decision run finished" in str(error)
    assert article is not None  # stored, and kept
    outcomes = dict(query("select key, outcome from items where feed_id = 'fixture-news'"))
    assert outcomes["guid:north-cargo-crash-bethel"] == "unmatched"
    copies = ("guid:caspian-azal-final-report", "guid:syndicated-azal-report")
    assert sorted(str(outcomes[k]) for k in copies) == ["development", "duplicate"]
    assert len(receiver.requests) == 1
