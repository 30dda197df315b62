"""`storywatch ...` commands (also `python -m worker`), calling the pipeline.

Service commands (run, init, worker, beat) read the full configuration and fail at start
with every problem listed. Offline commands (stories, replay) need only a corpus; `check`
answers from the service's database, read-only, and from the corpus while there is none;
`eval` needs the evaluation data (`shared/data/`) and the default corpus.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from worker import __version__
from worker.cli import desk as cli_desk
from worker.cli import offline
from worker.cli import ops as cli_ops
from worker.errors import ConfigError
from worker.observe.logs import configure_logging
from worker.settings import Settings, load_settings

if TYPE_CHECKING:
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in {"worker", "beat"}:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.handler(args, extra))
    except ConfigError as exc:
        print(f"storywatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        if args.command in {"run", "worker", "beat"}:
            raise  # a service's broken pipe is a fault to see, not a reader who left
        # The reader left (`storywatch stories | head`): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storywatch",
        description="Watch news feeds and alert when a tracked story has a new development.",
    )
    parser.add_argument("--version", action="version", version=f"storywatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the whole service (worker, scheduler and the story desk)"
    )
    run.add_argument(
        "--no-web", action="store_true", help="do not serve the story desk (storywatch web)"
    )
    run.set_defaults(handler=_run)
    init = commands.add_parser("init", help="migrate the database, load feeds and stories")
    init.set_defaults(handler=_init)
    worker = commands.add_parser(
        "worker", help="run a Celery worker (distributed mode); extra args go to Celery"
    )
    worker.set_defaults(handler=_worker)
    beat = commands.add_parser("beat", help="run the scheduler alone (distributed mode)")
    beat.set_defaults(handler=_beat)

    offline.register(commands)  # stories, replay, check
    cli_desk.register(commands)  # web, feedback, mute
    cli_ops.register(commands)  # status, alerts list|retry|test, health
    offline.register_eval(commands)
    return parser


# ---------------------------------------------------------------------------------------
# Service commands


def _service_settings(*, metrics: bool = False) -> Settings:
    """The settings, logging configured by them; with `metrics`, the multiprocess metrics
    set up next: after logging (its one line comes out in the configured format), before
    anything imports prometheus_client (worker.celery_app does)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if metrics:
        _prepare_metrics()
    from worker.celery_app import use_settings  # noqa: PLC0415 - keeps offline commands light

    use_settings(settings)
    return settings


def _prepare(settings: Settings) -> None:
    from worker.pipeline import initialise, open_runtime  # noqa: PLC0415

    runtime = open_runtime(settings)
    try:
        initialise(runtime)
    finally:
        runtime.close()


def _prepare_metrics() -> None:
    # Before anything imports prometheus_client: its multiprocess mode (prefork children
    # counting into shared files) is chosen when the library first loads.
    from worker.observe.metrics_env import prepare_multiprocess  # noqa: PLC0415

    prepare_multiprocess(os.environ)


def _run(args: argparse.Namespace, _extra: list[str]) -> int:
    settings = _service_settings(metrics=True)
    from worker.celery_app import app  # noqa: PLC0415

    _prepare(settings)
    if not args.no_web:
        from worker.web.serve import start_in_background  # noqa: PLC0415

        start_in_background(settings)  # a daemon thread: it ends with the worker
    # One process: a solo-pool worker with the scheduler embedded, so nothing else runs.
    app.worker_main(
        [
            "worker",
            "--beat",
            "--pool=solo",
            f"--loglevel={settings.log_level}",
            f"--schedule={(settings.data_dir / 'beat-schedule').resolve()}",
            "--without-gossip",
            "--without-mingle",
            "--hostname=storywatch-embedded@%h",
        ]
    )
    return 0


def _init(_args: argparse.Namespace, _extra: list[str]) -> int:
    _prepare(_service_settings())
    return 0


def _worker(_args: argparse.Namespace, extra: list[str]) -> int:
    settings = _service_settings(metrics=True)
    from worker.celery_app import app  # noqa: PLC0415

    # storywatch uses neither gossip nor mingle (worker-to-worker events and start-up sync),
    # and Celery's gossip step can take a worker down while it reconnects to a restarted
    # Redis ("Unrecoverable error: AttributeError ... 'hostname'", celery/kombu#582).
    quiet = ["--without-gossip", "--without-mingle"]
    app.worker_main(
        ["worker", f"--loglevel={settings.log_level}", *quiet, *node_name(extra, os.getpid())]
    )
    return 0


def node_name(extra: list[str], pid: int) -> list[str]:
    """The Celery options, with a node name unique on this host unless one is given:
    two workers both called `celery@host` would be one node to `inspect` and Flower."""
    named = any(
        option in ("-n", "--hostname") or option.startswith(("-n", "--hostname="))
        for option in extra
    )
    return extra if named else [*extra, f"--hostname=storywatch-{pid}@%h"]


def _beat(_args: argparse.Namespace, extra: list[str]) -> int:
    from worker.celery_app import app  # noqa: PLC0415

    settings = _service_settings()
    schedule = (settings.data_dir / "beat-schedule").resolve()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.start(["beat", f"--loglevel={settings.log_level}", f"--schedule={schedule}", *extra])
    return 0
