"""Issue 4 acceptance: real workers on real Redis deliver every alert to a flaky receiver.

A third of the receiver's answers fail: 500, a response slower than the worker's
timeout (the receiver then accepts, too late for the worker to know), or 429 with
Retry-After. Every one of 200 alerts must arrive, signed, and the receiver must never
accept one webhook-id twice except after one of its own too-slow answers.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, text
from standardwebhooks import Webhook
from werkzeug import Request, Response

from tests.conftest import write_config
from tests.outbox import add_alerts
from worker import pipeline
from worker.settings import load_settings

SECRET = "whsec_" + "Zmxha3ktcmVjZWl2ZXItYWNjZXB0YW5jZS10ZXN0"
ALERTS = 200
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]


class FlakyReceiver:
    """Fails every third request, cycling through 500, a too-slow answer, and 429."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.failures = itertools.cycle(["500", "slow", "429"])
        self.timely: Counter[str] = Counter()  # accepted while the worker still listened
        self.late: Counter[str] = Counter()  # accepted after the worker gave up
        self.forged = 0

    def handle(self, request: Request) -> Response:
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            Webhook(SECRET).verify(body, headers)
        except Exception:
            with self.lock:
                self.forged += 1
            return Response("bad signature", status=401)
        ident = headers["webhook-id"]
        with self.lock:
            failure = next(self.failures) if next(self.counter) % 3 == 0 else None
        if failure == "500":
            return Response("oops", status=500)
        if failure == "429":
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        if failure == "slow":
            time.sleep(1.0)  # the worker's timeout is 0.5 s: it sees a failure, we accept
            with self.lock:
                self.late[ident] += 1
            return Response("accepted late", status=202)
        with self.lock:
            self.timely[ident] += 1
        return Response("accepted", status=202)


@pytest.fixture
def flaky() -> Iterator[tuple[HTTPServer, FlakyReceiver]]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    receiver = FlakyReceiver()
    server.expect_request("/hook", method="POST").respond_with_handler(receiver.handle)
    yield server, receiver
    server.clear()
    server.stop()


def test_every_alert_reaches_a_flaky_receiver_exactly_once_per_acceptance(
    tmp_path: Path, flaky: tuple[HTTPServer, FlakyReceiver], redis_url: str, postgres_url: str
) -> None:
    server, receiver = flaky
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "hook"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        'secret_env = "HOOK_SECRET"\n',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYWATCH_")}
    env.update(
        STORYWATCH_CONFIG_DIR=str(config),
        STORYWATCH_DATA_DIR=str(tmp_path / "var"),
        STORYWATCH_REDIS_URL=redis_url,
        STORYWATCH_DATABASE_URL=postgres_url,
        STORYWATCH_TICK_SECONDS="0.5",
        STORYWATCH_DELIVERY_RETRY_SECONDS="0.2",
        STORYWATCH_DELIVERY_TIMEOUT_SECONDS="0.5",
        STORYWATCH_LOG_FORMAT="json",
        HOOK_URL=server.url_for("/hook"),
        HOOK_SECRET=SECRET,
    )
    runtime = pipeline.open_runtime(load_settings(env, dotenv=False))
    pipeline.initialise(runtime)
    alert_ids = add_alerts(runtime, ALERTS, "hook")
    runtime.close()

    log = tmp_path / "workers.log"
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            env=env,
            cwd=tmp_path,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for args in (
            ["worker", "--concurrency=2", "--hostname=a@%h"],
            ["worker", "--concurrency=2", "--hostname=b@%h"],
            ["beat"],
        )
    ]
    engine = create_engine(postgres_url)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                left = connection.execute(
                    text("select count(*) from deliveries where status != 'delivered'")
                ).scalar_one()
            if left == 0:
                break
            time.sleep(1)
        else:
            pytest.fail(f"{left} deliveries not delivered; log tail:\n{log.read_text()[-4000:]}")
        with engine.connect() as connection:
            dead = connection.execute(
                text("select count(*) from deliveries where status = 'dead'")
            ).scalar_one()
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        engine.dispose()

    accepted = set(receiver.timely) | set(receiver.late)
    assert accepted == set(alert_ids)
    assert dead == 0 and receiver.forged == 0
    # A second acceptance only ever follows one of the receiver's own too-slow answers.
    assert all(receiver.timely[i] <= 1 for i in alert_ids)
    assert sum(receiver.late.values()) > 0  # the slow path was exercised
