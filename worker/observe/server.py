"""The metrics server: /metrics and /healthz on STORYWATCH_METRICS_PORT, in the worker's
main process, started once per process.

/healthz answers 200 when the database answers a query and, when Redis is the broker,
Redis answers PING; 503 with the failing check otherwise. The numbers themselves are
`worker.observe.metrics`. What this module must not do: let a port already taken or a
failing check break the worker: both are logged and the worker runs on.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import (
    CollectorRegistry,
    make_wsgi_app,
)
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from worker.observe.logs import get_logger
from worker.observe.metrics import build_registry, multiprocess_active, short_error
from worker.observe.metrics_env import metrics_address, metrics_port
from worker.settings import Settings
from worker.store import ops

EVENT_STARTED = "metrics.server_started"
EVENT_DISABLED = "metrics.server_disabled"
EVENT_FAILED = "metrics.server_failed"
HEALTH_PATHS = ("/healthz", "/health")
# Workers sharing a host take the configured port and the next ones (9464, 9465, ...).
PORT_ATTEMPTS = 16
HEALTH_TIMEOUT_SECONDS = 2.0

log = get_logger("worker.observe.metrics")


# ---------------------------------------------------------------------------------------
# Health


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    checks: dict[str, str]  # name -> "ok", or the reason it failed

    def to_json(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "unavailable", "checks": self.checks}


def check_health(
    sessions: sessionmaker[Session],
    redis_url: str | None,
    *,
    timeout: float = HEALTH_TIMEOUT_SECONDS,
) -> Health:
    """The database answers a query and, when Redis is the broker, Redis answers PING."""
    checks: dict[str, str] = {}
    try:
        with sessions() as session:
            ops.database_answers(session)
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = short_error(exc)
    if redis_url:
        import redis  # noqa: PLC0415 - only distributed mode has a Redis to ask

        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            client.ping()
            checks["broker"] = "ok"
        except redis.RedisError as exc:
            checks["broker"] = short_error(exc)
        finally:
            client.close()
    return Health(all(v == "ok" for v in checks.values()), checks)


# ---------------------------------------------------------------------------------------
# The server


def metrics_app(registry: CollectorRegistry, health: Callable[[], Health]) -> WSGIApplication:
    """prometheus_client's /metrics app, with /healthz answering 200 or 503 in JSON."""
    metrics = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in HEALTH_PATHS:
            result = health()
            body = json.dumps(result.to_json()).encode("utf-8")
            status = "200 OK" if result.ok else "503 Service Unavailable"
            start_response(
                status,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [body]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every 15 s would drown the worker's log; log nothing."""


@dataclass(frozen=True, slots=True)
class MetricsServer:
    httpd: WSGIServer
    thread: threading.Thread
    host: str
    port: int

    def url(self, path: str = "/metrics") -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_metrics(settings: Settings, *, host: str, port: int) -> MetricsServer:
    """Serve /metrics and /healthz on a daemon thread (port 0: any free port)."""
    sessions = ops.reader_sessions(settings.database_url)
    registry = build_registry(
        sessions, configured_destinations=tuple(d.id for d in settings.destinations)
    )
    app = metrics_app(registry, lambda: check_health(sessions, settings.redis_url))

    class _Server(ThreadingWSGIServer):
        # As prometheus_client's start_http_server: IPv6 when the address is IPv6.
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    httpd = make_server(host, port, app, _Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="storywatch-metrics", daemon=True)
    thread.start()
    return MetricsServer(httpd, thread, host, httpd.server_port)


def _serve_on_a_free_port(settings: Settings, host: str, port: int) -> MetricsServer | None:
    """The server on `port`, or, when another worker on this host holds it, on the next
    free one of PORT_ATTEMPTS (each worker is its own scrape target; the log says which
    port it took). None when none is free: a worker without metrics still delivers."""
    error: OSError | None = None
    for candidate in range(port, min(port + PORT_ATTEMPTS, 65536)):
        try:
            return serve_metrics(settings, host=host, port=candidate)
        except OSError as exc:
            error = exc
            if exc.errno != errno.EADDRINUSE:
                break  # not "taken": the next port would fail the same way
    log.error(EVENT_FAILED, host=host, port=port, error=str(error))
    return None


class _HasSettings(Protocol):
    @property
    def settings(self) -> Settings: ...


_started: dict[int, MetricsServer | None] = {}  # by pid: once per process, never in a child
_start_lock = threading.Lock()


def start_metrics_server(source: Settings | _HasSettings) -> MetricsServer | None:
    """Start the server once in this process, as configured; None when disabled or failed.

    Connect to Celery's `worker_ready` signal: it fires in the main process after the pool
    has forked, so no child inherits the listening thread. A taken port is logged, not
    raised: a worker without metrics still delivers alerts.
    """
    settings = source if isinstance(source, Settings) else source.settings
    with _start_lock:
        if os.getpid() in _started:
            return _started[os.getpid()]
        port = metrics_port(os.environ)
        server: MetricsServer | None = None
        if port == 0:
            log.info(EVENT_DISABLED)
        else:
            host = metrics_address(os.environ)
            server = _serve_on_a_free_port(settings, host, port)
            if server is not None:
                log.info(
                    EVENT_STARTED,
                    host=host,
                    port=server.port,
                    configured_port=port,
                    multiprocess=multiprocess_active(),
                )
        _started[os.getpid()] = server
        return server
