"""Metrics settings and the multiprocess directory, without importing prometheus_client.

prometheus_client picks its value storage once, when it is first imported: in-memory, or
memory-mapped files in PROMETHEUS_MULTIPROC_DIR ("multiprocess mode", prometheus_client
docs, "Multiprocess Mode (E.g. Gunicorn)"). Under Celery's prefork pool every task runs in a
child process, so the main process, which serves /metrics, sees the children's counters
only in multiprocess mode. That decision must be made before the first import, which is
why this module exists apart from `metrics.py` and must never import prometheus_client.

Settings (read from an environment mapping; to move into Settings):
- STORYWATCH_METRICS_PORT (default 9464; 0 disables the metrics and health server)
- STORYWATCH_METRICS_ADDR (default 0.0.0.0, as prometheus_client's own default)
- PROMETHEUS_MULTIPROC_DIR (optional; each worker main process counts in a directory
  of its own under it, so two workers given the same one do not wipe each other's files)
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from worker.errors import ConfigError
from worker.observe.logs import get_logger

log = get_logger(__name__)

PORT_ENV = "STORYWATCH_METRICS_PORT"
ADDR_ENV = "STORYWATCH_METRICS_ADDR"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_PORT = 9464  # the port prometheus_client's examples and OpenTelemetry use
DEFAULT_ADDR = "0.0.0.0"  # noqa: S104 - Prometheus scrapes from another host or container

EVENT_MULTIPROCESS = "metrics.multiprocess_dir"
EVENT_TOO_LATE = "metrics.multiprocess_unavailable"
EVENT_SHARED = "metrics.multiprocess_dir_not_own"
_PREPARED = "STORYWATCH_METRICS_PREPARED_BY"  # the pid that prepared the directory


def metrics_port(environ: Mapping[str, str]) -> int:
    """STORYWATCH_METRICS_PORT: 1-65535, or 0 to disable; ConfigError when malformed."""
    raw = environ.get(PORT_ENV, "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError([f"{PORT_ENV}: expected a port number (0 disables), got {raw!r}"])
    return int(raw)


def metrics_address(environ: Mapping[str, str]) -> str:
    return environ.get(ADDR_ENV, "").strip() or DEFAULT_ADDR


def multiprocess_dir(environ: Mapping[str, str]) -> Path | None:
    raw = environ.get(MULTIPROC_ENV, "").strip()
    return Path(raw) if raw else None


def prepare_multiprocess(environ: MutableMapping[str, str]) -> Path | None:
    """Give this worker a fresh multiprocess directory; call before prometheus_client loads.

    1. Metrics disabled (port 0): nothing to do.
    2. PROMETHEUS_MULTIPROC_DIR set by the operator: this worker counts in
       `worker-<host>-<pid>` under it, made fresh, exported to the pool's children and
       removed at exit. Two workers given one directory (one host, one setting, or
       containers sharing a volume) would otherwise each delete the other's files on
       start and serve each other's sums. Directories left by workers of this host that
       died without cleaning up are removed. If prometheus_client is loaded already, it
       writes where it was told: that directory is used as it is (and wiped), as before.
    3. Not set and prometheus_client not yet imported: a new private temporary directory,
       exported to the environment the pool's children inherit, removed at exit.
    4. Not set but prometheus_client already imported: too late; log why and return None
       (counters then cover the serving process only).
    Must not run in a pool child: wiping there would erase its siblings' counters.
    """
    if metrics_port(environ) == 0:
        return None
    path = multiprocess_dir(environ)
    if environ.get(_PREPARED) == str(os.getpid()):
        # Prepared already in this process (the CLI, then Celery's `worker_init`): the
        # files there are in use now, and wiping them would lose every metric created
        # since (prometheus_client keeps writing to the deleted files).
        return path
    environ[_PREPARED] = str(os.getpid())
    if path is not None and "prometheus_client" in sys.modules:
        # Loaded already (`celery -A worker.celery_app worker` imports the tasks first):
        # it writes in the directory it was given, so that one is this worker's.
        log.warning(EVENT_SHARED, path=str(path), reason="prometheus_client was imported first")
        _wipe(path)
    elif path is not None:
        path = _own_directory(path, socket.gethostname(), os.getpid())
        environ[MULTIPROC_ENV] = str(path)
    elif "prometheus_client" in sys.modules:
        log.warning(EVENT_TOO_LATE, reason="prometheus_client was imported before the setup")
        return None
    else:
        path = Path(tempfile.mkdtemp(prefix="storywatch-metrics-"))
        environ[MULTIPROC_ENV] = str(path)
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    log.info(EVENT_MULTIPROCESS, path=str(path))
    return path


_OWN = "worker-"  # prefix of each worker's own directory under PROMETHEUS_MULTIPROC_DIR


def _own_directory(base: Path, host: str, pid: int) -> Path:
    """`base/worker-<host>-<pid>`, fresh, removed at exit; `base` itself when an earlier
    call in this process already chose it. The host name keeps workers of different
    machines or containers (each its own process ids, often 1) apart; siblings of this
    host whose process is gone are removed."""
    mine = f"{_OWN}{_safe(host)}-"
    if base.name == f"{mine}{pid}":
        _wipe(base)
        return base
    base.mkdir(parents=True, exist_ok=True)
    for sibling in base.glob(f"{mine}*"):
        number = sibling.name.removeprefix(mine)
        if number.isdigit() and not _alive(int(number)):
            shutil.rmtree(sibling, ignore_errors=True)
    own = base / f"{mine}{pid}"
    shutil.rmtree(own, ignore_errors=True)  # a dead process's, whose pid we now have
    own.mkdir()
    atexit.register(shutil.rmtree, own, ignore_errors=True)
    return own


def _safe(host: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in host) or "host"


def _wipe(path: Path) -> None:
    """Delete the `*.db` files, as prometheus_client requires between runs."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
