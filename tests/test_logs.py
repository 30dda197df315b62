"""Logs never carry secrets, whatever a caller binds, and stay one JSON object a line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO
from worker.observe.logs import redact_secrets, register_secrets


def test_secret_keys_and_values_are_masked() -> None:
    register_secrets(["s3cr3t-database-password"])
    event = redact_secrets(
        None,
        "info",
        {
            "event": "delivery.failed",
            "secret": "whsec_abc",
            "url": "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
            "database": "postgresql+psycopg://app:s3cr3t-database-password@db/app",
            "error": "POST https://user:pw@example.org/hook failed, key whsec_Zm9vYmFy",
            "feed_id": "bbc-world",
        },
    )
    assert event["secret"] == "[redacted]"
    assert event["url"] == "https://hooks.slack.com/services/[redacted]"
    assert "s3cr3t" not in event["database"]
    assert "user:pw" not in event["error"] and "Zm9vYmFy" not in event["error"]
    assert event["feed_id"] == "bbc-world"


def test_json_lines_stay_whole_when_threads_log_at_once() -> None:
    """A thread-pool worker logs from many threads, through structlog and through stdlib
    logging (Celery's own lines): every line must still be one JSON object."""
    script = (
        "import logging, threading\n"
        "from worker.observe.logs import configure_logging, get_logger\n"
        "configure_logging('INFO', 'json')\n"
        "def run(n):\n"
        "    for i in range(400):\n"
        "        get_logger('t').info('feed.polled', feed_id=f'f{n}', i=i, pad='x' * 300)\n"
        "        logging.getLogger('celery').info('Task %s succeeded', i)\n"
        "threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
    )
    lines = _stderr_of(script).splitlines()
    assert len(lines) == 8 * 400 * 2
    events = [json.loads(line) for line in lines]  # raises on a torn line
    assert sum(1 for e in events if e["event"] == "feed.polled") == 3_200


def test_a_stdlib_error_keeps_its_traceback_in_json() -> None:
    """Celery reports a worker's fatal error through stdlib logging with exc_info: the
    JSON line must carry the traceback as text (it held the exc_info tuple's repr)."""
    script = (
        "import logging\n"
        "from worker.observe.logs import configure_logging\n"
        "configure_logging('INFO', 'json')\n"
        "def connect():\n"
        "    raise AttributeError('no hostname')\n"
        "try:\n"
        "    connect()\n"
        "except AttributeError as exc:\n"
        "    log = logging.getLogger('celery.worker')\n"
        "    log.critical('Unrecoverable error: %r', exc, exc_info=True)\n"
    )
    (event,) = [json.loads(line) for line in _stderr_of(script).splitlines()]
    assert event["event"].startswith("Unrecoverable error")
    assert "Traceback (most recent call last)" in event["exception"]
    assert "in connect" in event["exception"] and "no hostname" in event["exception"]


def _stderr_of(script: str) -> str:
    """What a Python process running `script` wrote to stderr (it must succeed)."""
    done = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr
