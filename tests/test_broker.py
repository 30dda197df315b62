"""The Redis transport the service connects with (`worker.celery_app.RedisTransport`):
when Redis goes away, releasing the broken connection as Celery's consumer does fails,
if at all, with connection errors, which Celery ignores before it reconnects; never with
the AttributeError that ended a worker when Redis restarted."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors

from tests.service import free_port, redis_server
from worker.celery_app import RedisTransport  # importing it installs it, as in the service

pytestmark = pytest.mark.redis


def test_the_service_connects_to_redis_through_its_transport(redis_url: str) -> None:
    for url in (redis_url, redis_url.replace("redis://", "rediss://", 1)):
        with Connection(url) as connection:
            assert connection.get_transport_cls() is RedisTransport
    with Connection(redis_url) as connection:
        assert connection.default_channel.client.ping()


def _consuming(url: str) -> Connection:
    """A connection in the state of a worker's when Redis went away: its default channel
    waits in BRPOP with a task message received and not acknowledged (acks_late), and a
    later channel listens to a fanout exchange (Celery's remote control, `inspect ping`)."""
    connection = Connection(url)
    tasks = Queue("storywatch-broker-test")
    with connection.Producer() as producer:
        producer.publish({"task": 1}, routing_key=tasks.name, declare=[tasks])
    received: list[object] = []
    connection.Consumer(
        [tasks], callbacks=[lambda _body, message: received.append(message)]
    ).consume()
    connection.drain_events(timeout=2)
    assert received and not connection.default_channel.qos._delivered.restored
    with pytest.raises(socket.timeout):
        connection.drain_events(timeout=0.2)  # leaves its BRPOP waiting
    control = connection.channel()
    broadcast = Queue(
        "storywatch-broker-test.pidbox",
        Exchange("storywatch-broker-test.pidbox", type="fanout"),
        auto_delete=True,
        channel=control,
    )
    connection.Consumer([broadcast], channel=control, callbacks=[lambda *_: None]).consume()
    assert control.client.ping()
    return connection


def test_releasing_a_connection_whose_redis_went_away_ends_in_connection_errors(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = redis_server(port, tmp_path)
    try:
        connection = _consuming(f"redis://127.0.0.1:{port}/0")
    finally:
        server.terminate()
        server.wait(timeout=10)
    # What Celery's consumer does on "Connection to broker lost" (its
    # on_connection_error_after_connected): collect, then close, ignoring connection
    # errors. Collecting fails half-way (the fanout channel cannot reach Redis), so the
    # close comes back to the task channel after the transport was released, and putting
    # its unacknowledged message back needs a new Redis client. kombu's own transport
    # raised AttributeError("'NoneType' object has no attribute 'hostname'") there.
    with contextlib.suppress(Exception):  # as Celery ignores any error of collect()
        connection.collect(socket_timeout=2)
    ignore_errors(connection, connection.close)
