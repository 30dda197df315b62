"""Which queue each task waits in: deliveries, polls and decisions never queue behind page
fetches."""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from tests.conftest import write_config
from worker.celery_app import (
    DECIDE_QUEUE,
    DELIVERY_QUEUE,
    ITEMS_QUEUE,
    POLL_QUEUE,
    celery_config,
)
from worker.settings import load_settings


def configured_app(tmp_path: Path) -> Celery:
    settings = load_settings(
        {
            "STORYWATCH_CONFIG_DIR": str(write_config(tmp_path)),
            "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
        },
        dotenv=False,
    )
    app = Celery("queues-under-test", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def test_each_task_has_its_queue_and_a_worker_consumes_all_of_them(tmp_path: Path) -> None:
    app = configured_app(tmp_path)
    routed = {
        name: app.amqp.router.route({}, name)["queue"].name
        for name in (
            "storywatch.deliver_alert",
            "storywatch.poll_feed",
            "storywatch.poll_due_feeds",
            "storywatch.process_item",
            "storywatch.decide_item",
        )
    }
    assert routed == {
        "storywatch.deliver_alert": DELIVERY_QUEUE,
        "storywatch.poll_feed": POLL_QUEUE,
        "storywatch.poll_due_feeds": POLL_QUEUE,
        "storywatch.process_item": ITEMS_QUEUE,
        "storywatch.decide_item": DECIDE_QUEUE,
    }
    # A worker started without -Q consumes every declared queue (Celery: `task_queues`).
    assert set(app.amqp.queues) == {DELIVERY_QUEUE, POLL_QUEUE, DECIDE_QUEUE, ITEMS_QUEUE}


def test_celery_call_configures_the_app_once_without_recursing(tmp_path: Path) -> None:
    """`celery -A worker.celery_app call ...` reads the configuration after the amqp layer
    exists; an `on_configure` handler updating `conf` then re-entered the loading."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    config = write_config(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STORYWATCH_")},
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "call", "storywatch.prune"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RecursionError" not in done.stdout + done.stderr
