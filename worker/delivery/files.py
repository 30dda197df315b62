"""Local delivery: the console, and a JSONL file appended whole or not at all."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from worker.alerts.payloads import jsonl_record
from worker.delivery.common import failed, json_bytes, templated
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig


def to_console(text: str, stream: TextIO) -> DeliveryOutcome:
    try:
        stream.write(text + "\n")
        stream.flush()
    except OSError as exc:  # a closed pipe or a full disk behind a redirect
        return failed(f"could not write to the console: {exc}", False)
    return DeliveryOutcome(ok=True)


def append_jsonl(alerts: Sequence[AlertContent], destination: DestinationConfig) -> DeliveryOutcome:
    """One line per alert, appended in one write: a digest that fails part-way and is
    retried does not write its first lines twice."""
    return to_jsonl([(alert, templated(alert, destination)) for alert in alerts], destination)


def test_path(path: Path) -> Path:
    """Where test alerts of a JSONL destination go: beside its file, so a consumer of the
    alerts never reads one (alerts.jsonl: alerts.test.jsonl)."""
    return path.with_name(f"{path.stem}.test{path.suffix or '.jsonl'}")


def to_jsonl(
    messages: Sequence[tuple[AlertContent, str | None]], destination: DestinationConfig
) -> DeliveryOutcome:
    if not destination.path:
        return failed(f"jsonl destination {destination.id!r} has no path", True)
    path = Path(destination.path)
    if messages and all(alert.test for alert, _ in messages):
        path = test_path(path)
    lines = []
    for alert, message in messages:
        record = jsonl_record(alert)
        if message is not None:
            record["message"] = message
        lines.append(json_bytes(record) + b"\n")
    data = b"".join(lines)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # The lock keeps workers' lines whole (a short write is finished before anyone
            # else appends) and lets a failed append be undone: a retried delivery must not
            # find half of its lines, or half a line, already written.
            fcntl.flock(fd, fcntl.LOCK_EX)
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)  # an alert reported as delivered survives a power cut
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)  # and with it the lock
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        return failed(f"cannot append to {path}: {exc.strerror or exc}", True)
    except OSError as exc:  # e.g. a full disk: an operator may free space
        return failed(f"could not append to {path}: {exc.strerror or exc}", False)
    return DeliveryOutcome(ok=True)
