"""The Celery application: configuration, beat schedule and worker signals. Celery only.

Embedded mode (no STORYWATCH_REDIS_URL): kombu's SQLAlchemy transport on a SQLite file in
the data directory, so `storywatch run` needs no server. Distributed mode: Redis.
Configuration is applied lazily (`app.add_defaults`), from the settings the CLI loaded or,
under `celery -A worker.celery_app ...`, from the environment.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis.exceptions
from celery import Celery
from celery.signals import task_prerun, worker_init, worker_process_init, worker_ready
from kombu import transport as kombu_transport
from kombu.entity import Queue
from kombu.transport import redis as kombu_redis

from worker.observe.logs import bind_task_context, configure_logging, register_secrets
from worker.pipeline.runtime import Runtime, open_runtime
from worker.settings import Settings, load_settings


class _RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, except that one left over from a released connection fails
    as a lost connection (which Celery's consumer recovers from), not with an
    AttributeError (which ends the worker).

    When Redis goes away, Celery's consumer releases the broken connection
    (`Connection.collect()`, which clears the transport's `client`) and then closes it.
    A channel whose first close failed half-way (its BRPOP read raised) is closed again
    there; putting its unacknowledged messages back asks for a new Redis client, which
    kombu builds from `transport.client.hostname`: "Unrecoverable error: AttributeError(
    "'NoneType' object has no attribute 'hostname'")" and the worker exits (seen in CI;
    celery/kombu#582 is the same failure from another step). The messages are not lost:
    kombu keeps them in Redis's `unacked` hash until a worker restores them.
    """

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError(
                "the broker connection was released: no new Redis client for this channel"
            )
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        return params


class RedisTransport(kombu_redis.Transport):
    Channel = _RedisChannel


def _use_redis_transport() -> None:
    """Connect to redis:// and rediss:// brokers through `RedisTransport` in this process
    (the URL and its options are read as before)."""
    for scheme in ("redis", "rediss"):
        kombu_transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:RedisTransport"
        # kombu remembers the class each name resolved to: forget one resolved before.
        kombu_transport._transport_cache.pop(scheme, None)


_use_redis_transport()  # before any broker connection
app = Celery("storywatch", include=["worker.service.tasks"])

ITEMS_QUEUE = "storywatch"  # process_item: page fetch, extraction, copy check, storage
# decide_item: match and judge. Any worker may take it; one worker taking it alone
# (`storywatch worker -Q storywatch.decide --pool=solo`, the others `-X storywatch.decide`)
# decides fastest: a second decider spends its time learning what the first learned.
DECIDE_QUEUE = "storywatch.decide"
POLL_QUEUE = "storywatch.poll"
DELIVERY_QUEUE = "storywatch.deliver"
QUEUES = (DELIVERY_QUEUE, POLL_QUEUE, DECIDE_QUEUE, ITEMS_QUEUE)
PRUNE_EVERY_SECONDS = 24 * 3600.0

_state_lock = threading.Lock()
_settings: Settings | None = None
_runtime: Runtime | None = None


def use_settings(settings: Settings) -> None:
    """Install the settings this process runs with (the CLI calls this first)."""
    global _settings, _runtime
    with _state_lock:
        _settings, _runtime = settings, None
    register_secrets(
        [settings.redis_url, settings.database_url]
        + [d.url for d in settings.destinations]
        + [d.secret for d in settings.destinations]
    )


def current_settings() -> Settings:
    if _settings is None:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        use_settings(settings)
        return settings
    return _settings


def runtime() -> Runtime:
    """This process's Runtime, opened on first use (after the fork, in prefork workers)."""
    global _runtime  # noqa: PLW0603
    settings = current_settings()
    with _state_lock:
        if _runtime is None:
            _runtime = open_runtime(settings, run_migrations=False)
        return _runtime


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # keep reconnecting: Redis may restart
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "task_acks_late": True,
        # A worker child killed mid-task (OOM, SIGKILL) requeues the message instead of
        # acking it: every task is idempotent, so running it again is safe.
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "timezone": "UTC",
        "enable_utc": True,
        "task_default_queue": ITEMS_QUEUE,
        # Four queues, each worker consuming all four unless told otherwise (kombu takes
        # from them in turn): an alert, a poll or a decision waits behind at most the task
        # in hand, never behind a thousand page fetches queued before it.
        "task_queues": tuple(Queue(name) for name in QUEUES),  # type: ignore[no-untyped-call]
        "task_routes": {
            "storywatch.deliver_alert": {"queue": DELIVERY_QUEUE},
            "storywatch.decide_item": {"queue": DECIDE_QUEUE},
            "storywatch.poll_feed": {"queue": POLL_QUEUE},
            "storywatch.poll_due_feeds": {"queue": POLL_QUEUE},
        },
        "beat_schedule": {
            "storywatch-tick": {
                "task": "storywatch.poll_due_feeds",
                "schedule": settings.tick_seconds,
                "options": {"expires": max(settings.tick_seconds * 2, 5.0)},
            },
            "storywatch-prune": {
                "task": "storywatch.prune",
                "schedule": PRUNE_EVERY_SECONDS,
                "options": {"expires": PRUNE_EVERY_SECONDS},
            },
        },
    }
    if settings.redis_url:
        # Unacked messages return to the queue after this; longer than any task runs.
        config["broker_transport_options"] = {"visibility_timeout": 900}
    return config


# Lazily, when the configuration is first read: a promise of defaults, not an
# `on_configure` handler that updates `conf`, since such an update re-enters the
# configuration being loaded whenever the amqp layer exists already (`celery call`:
# "RecursionError" logged from the handler).
app.add_defaults(lambda: celery_config(current_settings()))


@worker_init.connect
def _prepare_metrics(**_: Any) -> None:
    # `celery -A worker.celery_app worker` skips the CLI: set up prometheus_client's
    # multiprocess directory here, before the pool forks its children.
    from worker.observe.metrics_env import prepare_multiprocess  # noqa: PLC0415

    prepare_multiprocess(os.environ)


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    # In the main process, after the pool forked, so no child inherits the server thread.
    from worker.observe.server import start_metrics_server  # noqa: PLC0415

    start_metrics_server(current_settings())


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # Database connections must not cross a fork: each child opens its own.
    global _runtime  # noqa: PLW0603
    with _state_lock:
        if _runtime is not None:
            _runtime.engine.dispose(close=False)
        _runtime = None


@task_prerun.connect
def _bind_context(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    bind_task_context(
        task=getattr(task, "name", None),
        task_id=task_id,
        worker=getattr(request, "hostname", None),
    )
