"""Run storywatch processes for end-to-end tests: start, stop, wait for a condition."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=env,
        cwd=cwd,
        stdout=(cwd / "service.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}; log tail:\n{log.read_text()[-4000:]}")


# The scheduler's tick ran the sweep and found no item, decision or delivery to enqueue again.
_QUIET_TICK = re.compile(
    r"Task storywatch\.poll_due_feeds\[[^\]]+\] succeeded in [^:]+: "
    r"\{'feeds': \d+, 'items': 0, 'decisions': 0, 'alerts': 0\}"
)


def log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def wait_for_quiet_ticks(log: Path, since: int, ticks: int = 2, timeout: float = 60) -> None:
    """Wait until, past byte `since` of the log, the scheduler has ticked `ticks` times
    with nothing to enqueue again. Called once every item is judged and every delivery
    settled, it means nothing is left that could make another alert: the test can count
    alerts without sleeping for a guessed while."""

    def quiet() -> bool:
        text = log.read_bytes()[since:].decode(errors="replace")
        return len(_QUIET_TICK.findall(text)) >= ticks

    wait_until(quiet, timeout, f"{ticks} quiet scheduler ticks", log)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_env(config: Path, data: Path, **overrides: str) -> dict[str, str]:
    """The environment of a storywatch process under test: this process's environment
    without its STORYWATCH_* settings, then test defaults, then `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYWATCH_")}
    env.update(
        STORYWATCH_CONFIG_DIR=str(config),
        STORYWATCH_DATA_DIR=str(data),
        STORYWATCH_TICK_SECONDS="1",
        STORYWATCH_LOG_FORMAT="json",
        STORYWATCH_METRICS_PORT="0",  # several workers on one host: no port clash
        STORYWATCH_WEB_PORT=str(free_port()),  # `run` serves the desk: not on 8080
        # Production backoffs (30 s, doubling) would outlast a test's patience when a
        # loaded machine makes one page fetch or delivery fail once; behaviour is the same.
        STORYWATCH_PAGE_RETRY_SECONDS="1",
        STORYWATCH_DELIVERY_RETRY_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def redis_server(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A throwaway redis-server on 127.0.0.1:`port` that keeps nothing on disk."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (README: apt-get install redis-server)")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    pytest.fail("redis-server did not start")
