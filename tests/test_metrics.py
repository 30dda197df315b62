"""The metrics and health server, scraped over HTTP like Prometheus does.

State comes from the real pipeline (see tests/test_ops.py `build_service`): a feed that
failed five times and a dead destination must show on /metrics; the pipeline counters
must add up across forked processes in multiprocess mode; /healthz answers 200 or 503.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer
from structlog.testing import capture_logs

from tests.conftest import REPO
from tests.test_ops import Service, build_service
from worker.observe import metrics, metrics_env
from worker.observe import server as metrics_server
from worker.store.ops import reader_sessions


@pytest.fixture
def service(tmp_path: Path, httpserver: HTTPServer, receiver: HTTPServer) -> Iterator[Service]:
    svc = build_service(tmp_path, httpserver, receiver)
    yield svc
    svc.runtime.close()


@pytest.fixture
def receiver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(service: Service) -> Iterator[metrics_server.MetricsServer]:
    running = metrics_server.serve_metrics(service.runtime.settings, host="127.0.0.1", port=0)
    yield running
    running.close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, keyed by name and sorted labels."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_show_the_failing_feed_and_the_dead_destination(
    server: metrics_server.MetricsServer,
) -> None:
    samples = scrape(server.url("/metrics"))
    assert samples[("storywatch_store_up", ())] == 1
    assert samples[("storywatch_feed_consecutive_errors", (("feed", "broken"),))] == 5
    assert samples[("storywatch_feed_stale", (("feed", "broken"),))] == 1
    assert samples[("storywatch_feed_stale", (("feed", "local"),))] == 0
    assert samples[("storywatch_stale_feeds", ())] == 1
    assert ("storywatch_feed_last_success_timestamp_seconds", (("feed", "local"),)) in samples
    dead = ("storywatch_outbox_deliveries", (("destination", "refusing"), ("status", "dead")))
    assert samples[dead] == 1
    pending = ("storywatch_outbox_deliveries", (("destination", "refusing"), ("status", "pending")))
    assert samples[pending] == 0
    assert (
        samples[("storywatch_outbox_oldest_waiting_seconds", (("destination", "refusing"),))] == 0
    )


def test_pipeline_counters_and_stage_latencies_are_exposed(
    server: metrics_server.MetricsServer,
) -> None:
    before = scrape(server.url()).get(("storywatch_polls_total", (("outcome", "error"),)), 0.0)
    metrics.count_poll("error")
    metrics.count_item("development")
    metrics.count_match("story-a")
    metrics.count_development("story-a")
    metrics.count_delivery("refusing", "dead")
    with pytest.raises(RuntimeError), metrics.observe_stage("deliver"):
        raise RuntimeError("a failed stage is timed too")
    samples = scrape(server.url())
    assert samples[("storywatch_polls_total", (("outcome", "error"),))] == before + 1
    assert samples[("storywatch_items_total", (("outcome", "development"),))] >= 1
    assert samples[("storywatch_matches_total", (("story", "story-a"),))] >= 1
    assert samples[("storywatch_developments_total", (("story", "story-a"),))] >= 1
    delivery = ("storywatch_deliveries_total", (("destination", "refusing"), ("outcome", "dead")))
    assert samples[delivery] >= 1
    count = ("storywatch_stage_duration_seconds_count", (("stage", "deliver"),))
    assert samples[count] >= 1
    with pytest.raises(ValueError, match="unknown stage"), metrics.observe_stage("nap"):
        pass


def test_healthz_is_200_when_the_database_answers(server: metrics_server.MetricsServer) -> None:
    response = httpx.get(server.url("/healthz"), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_healthz_is_503_when_redis_does_not_answer(service: Service) -> None:
    settings = replace(service.runtime.settings, redis_url="redis://127.0.0.1:9/0")
    running = metrics_server.serve_metrics(settings, host="127.0.0.1", port=0)
    try:
        response = httpx.get(running.url("/healthz"), timeout=10)
    finally:
        running.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("ConnectionError")


def test_an_unreadable_database_is_a_gauge_and_a_503_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()  # a directory where the SQLite file should be
    sessions = reader_sessions(f"sqlite:///{tmp_path / 'db'}")
    registry = metrics.build_registry(sessions)
    assert registry.get_sample_value("storywatch_store_up") == 0
    health = metrics_server.check_health(sessions, None)
    assert not health.ok and health.checks["database"].startswith("OperationalError")


def test_start_metrics_server_honours_port_zero(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_server, "_started", {})
    monkeypatch.setenv(metrics_env.PORT_ENV, "0")
    assert metrics_server.start_metrics_server(service.runtime) is None
    monkeypatch.setenv(metrics_env.PORT_ENV, "nope")
    assert metrics_server.start_metrics_server(service.runtime) is None  # once per process


def test_a_second_worker_on_the_host_serves_its_metrics_on_the_next_port(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()  # the first worker's port
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    monkeypatch.setenv(metrics_env.PORT_ENV, str(port))
    monkeypatch.setenv(metrics_env.ADDR_ENV, "127.0.0.1")
    try:
        monkeypatch.setattr(metrics_server, "_started", {})
        with capture_logs() as logs:
            server = metrics_server.start_metrics_server(service.runtime)
        assert server is not None and server.port > port
        try:
            with httpx.Client() as client:
                assert client.get(server.url("/healthz")).status_code == 200
        finally:
            server.close()
        [started] = [e for e in logs if e["event"] == metrics_server.EVENT_STARTED]
        assert (started["port"], started["configured_port"]) == (server.port, port)

        # No port left to take: logged (the only sign this worker exports no metrics),
        # and the worker runs on.
        monkeypatch.setattr(metrics_server, "PORT_ATTEMPTS", 1)
        monkeypatch.setattr(metrics_server, "_started", {})
        with capture_logs() as logs:
            assert metrics_server.start_metrics_server(service.runtime) is None
    finally:
        taken.close()
    [failed] = [e for e in logs if e["event"] == metrics_server.EVENT_FAILED]
    assert failed["log_level"] == "error" and failed["port"] == port and failed["error"]


def test_metrics_port_setting() -> None:
    assert metrics_env.metrics_port({}) == 9464
    assert metrics_env.metrics_port({"STORYWATCH_METRICS_PORT": "0"}) == 0
    with pytest.raises(Exception, match="STORYWATCH_METRICS_PORT"):
        metrics_env.metrics_port({"STORYWATCH_METRICS_PORT": "http"})


# In a fresh interpreter, as `storywatch worker` would: choose multiprocess mode before
# prometheus_client loads, fork pool-like children that count, and scrape in the parent.
MULTIPROCESS_SCRIPT = """
import multiprocessing, os, sys
from worker.observe import metrics_env
environ = os.environ
path = metrics_env.prepare_multiprocess(environ)
assert path is not None and environ["PROMETHEUS_MULTIPROC_DIR"] == str(path)
from worker.observe import metrics
from worker.store.ops import reader_sessions

def child(n):
    for _ in range(n):
        metrics.count_poll("fetched")
    with metrics.observe_stage("poll"):
        pass

ctx = multiprocessing.get_context("fork")
procs = [ctx.Process(target=child, args=(n,)) for n in (2, 3)]
for p in procs: p.start()
for p in procs: p.join()
registry = metrics.build_registry(reader_sessions(sys.argv[1]))
print(registry.get_sample_value("storywatch_polls_total", {"outcome": "fetched"}))
print(registry.get_sample_value("storywatch_stage_duration_seconds_count", {"stage": "poll"}))
print(metrics.multiprocess_active())
"""


def _fresh_interpreter(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`script` run by a new Python of this checkout, with no multiprocess directory set
    (as a worker starts), asserted to succeed."""
    env = {k: v for k, v in os.environ.items() if k != metrics_env.MULTIPROC_ENV}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_counters_from_forked_children_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    done = _fresh_interpreter(MULTIPROCESS_SCRIPT, f"sqlite:///{tmp_path / 'x.db'}")
    assert done.stdout.split()[-3:] == ["5.0", "2.0", "True"]


OWN_DIRECTORY_SCRIPT = """
import os, socket, sys
from pathlib import Path
from worker.observe import metrics_env
environ = {metrics_env.MULTIPROC_ENV: sys.argv[1]}
own = metrics_env.prepare_multiprocess(environ)
assert environ[metrics_env.MULTIPROC_ENV] == str(own)  # the pool's children count there
(own / "counter_2.db").write_bytes(b"in use")
# Asked again in this process (the CLI, then Celery's worker_init): the same directory,
# its files left alone, since prometheus_client is writing to them.
again = metrics_env.prepare_multiprocess(environ)
print(own.name, socket.gethostname(), again == own, (own / "counter_2.db").exists())
"""


def test_prepare_multiprocess_gives_each_worker_its_own_directory(tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    host = socket.gethostname()
    # Another worker of this host given the same directory, one that died (its pid is
    # past any the system hands out), and one of another container sharing the volume.
    alive = tmp_path / f"worker-{host}-{os.getpid()}"
    dead = tmp_path / f"worker-{host}-99999999"
    elsewhere = tmp_path / "worker-another-host-1"
    for other in (alive, dead, elsewhere):
        other.mkdir()
        (other / "counter_1.db").write_bytes(b"counts")
    done = _fresh_interpreter(OWN_DIRECTORY_SCRIPT, str(tmp_path))
    name, shown_host, same, kept = done.stdout.split()[-4:]
    assert name.startswith(f"worker-{shown_host}-") and (same, kept) == ("True", "True")
    assert (alive / "counter_1.db").exists() and (elsewhere / "counter_1.db").exists()
    assert not dead.exists()
    assert not (tmp_path / name).exists()  # removed when that worker exited


def test_prepare_multiprocess_keeps_a_directory_prometheus_already_writes_and_knows_when_too_late(
    tmp_path: Path,
) -> None:
    # This interpreter already imported prometheus_client: an operator's directory is the
    # one it writes in, so it is used as it is (and wiped of a previous run's files).
    (tmp_path / "counter_123.db").write_bytes(b"old run")
    environ = {metrics_env.MULTIPROC_ENV: str(tmp_path)}
    assert metrics_env.prepare_multiprocess(environ) == tmp_path
    assert not list(tmp_path.glob("*.db"))
    assert metrics_env.prepare_multiprocess({}) is None
    assert metrics_env.prepare_multiprocess({metrics_env.PORT_ENV: "0"}) is None


def test_health_body_is_json(server: metrics_server.MetricsServer) -> None:
    response = httpx.get(server.url("/healthz"), timeout=10)
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content)["status"] == "ok"
