"""Serving the desk: in the foreground (`storywatch web`) or on a thread beside the
embedded worker (`storywatch run`)."""

from __future__ import annotations

import errno
import socket
import threading
from dataclasses import dataclass

import uvicorn

from worker.fetch.net import GuardedClient
from worker.observe.logs import get_logger
from worker.pipeline.runtime import open_runtime
from worker.settings import Settings
from worker.store.engine import make_reader_engine, make_sessions
from worker.web.app import create_app
from worker.web.common import Desk

log = get_logger(__name__)


def desk_for(settings: Settings) -> Desk:
    runtime = open_runtime(settings, run_migrations=False)

    def enqueue(alert_ids: tuple[str, ...]) -> str | None:
        from worker.service.enqueue import enqueue_deliveries  # noqa: PLC0415

        return enqueue_deliveries(settings, alert_ids)

    return Desk(
        runtime=runtime,
        readers=make_sessions(make_reader_engine(settings.database_url, pooled=True)),
        token=settings.web_token,
        public_reads=settings.web_public_reads,
        client=GuardedClient(settings.fetch_policy()),
        enqueue=enqueue,
    )


def _config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(desk_for(settings)),
        host=host,
        port=port,
        log_config=None,  # structlog owns the logging
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the client address is the peer's: reads are loopback-only
    )


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted."""
    log.info("web.start", host=host, port=port, writes=settings.web_token is not None)
    uvicorn.Server(_config(settings, host, port)).run()


@dataclass
class Background:
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in {errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL}:
                return False
            raise
    return True


def start_in_background(settings: Settings) -> Background | None:
    """The desk on a daemon thread; None, logged, when its port is taken (the worker runs
    on without it rather than not at all)."""
    host, port = settings.web_host, settings.web_port
    if not port_free(host, port):
        log.warning(
            "web.port_taken",
            host=host,
            port=port,
            hint="set STORYWATCH_WEB_PORT, or run with --no-web",
        )
        return None
    server = uvicorn.Server(_config(settings, host, port))
    thread = threading.Thread(target=server.run, name="storywatch-web", daemon=True)
    thread.start()
    log.info("web.start", host=host, port=port, writes=settings.web_token is not None)
    return Background(server, thread)
