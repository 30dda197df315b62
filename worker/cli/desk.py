"""`storywatch web`, `storywatch feedback` and `storywatch mute`: the story desk and its
terminal twins."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.cli.ready import database_ready
from worker.observe.logs import configure_logging
from worker.settings import Settings, load_settings


def register(subparsers: Any) -> None:
    web = subparsers.add_parser(
        "web", help="serve the story desk: pages, JSON API, Atom feeds (default 127.0.0.1:8080)"
    )
    web.add_argument("--host", help="address to bind (default STORYWATCH_WEB_HOST, 127.0.0.1)")
    web.add_argument("--port", type=_port, help="port (default STORYWATCH_WEB_PORT, 8080)")
    web.set_defaults(handler=_web)

    feedback = subparsers.add_parser(
        "feedback", help="say an alert was wrong: not-new or wrong-story"
    )
    feedback.add_argument("alert_id", help="an alert id, as `storywatch alerts list` shows it")
    feedback.add_argument("verdict", choices=("not-new", "wrong-story"))
    feedback.add_argument("--note", help="why, in a few words (shown on the desk)")
    feedback.set_defaults(handler=_feedback)

    mute = subparsers.add_parser("mute", help="stop alerts of a story, until a date or for good")
    mute.add_argument("story_id", help="a story id, as `storywatch stories` shows it")
    mute.add_argument("--until", help="YYYY-MM-DD (the end of that day, UTC) or ISO 8601")
    mute.add_argument("--off", action="store_true", help="unmute the story")
    mute.set_defaults(handler=_mute)


def _port(raw: str) -> int:
    """A TCP port, 0 to 65535 (argparse reports anything else as a usage error)."""
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {raw!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port


def _settings() -> Settings:
    settings = load_settings(service=False)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _web(args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.web.serve import serve  # noqa: PLC0415

    settings = _settings()
    # The desk reads what the service wrote: without its schema every page would fail.
    if not database_ready(settings, "web"):
        return 2
    serve(
        settings,
        args.host or settings.web_host,
        settings.web_port if args.port is None else args.port,
    )
    return 0


def _sessions(settings: Settings) -> Any:
    from worker.store.engine import make_engine, make_sessions  # noqa: PLC0415

    return make_sessions(make_engine(settings.database_url))


def _feedback(args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.pipeline.desk import Refused, give_verdict  # noqa: PLC0415
    from worker.pipeline.runtime import open_runtime  # noqa: PLC0415

    settings = _settings()
    if not database_ready(settings, "feedback"):
        return 2
    runtime = open_runtime(settings, run_migrations=False)
    try:
        result = give_verdict(runtime, verdict=args.verdict, alert_id=args.alert_id, note=args.note)
    finally:
        runtime.close()
    if isinstance(result, Refused):
        print(f"storywatch: {result.reason}", file=sys.stderr)
        return 1
    said = "recorded" if result.new else "already recorded"
    print(f"{said}: {result.verdict} on alert {args.alert_id} (story {result.story_id})")
    return 0


def _mute(args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.pipeline.desk import (  # noqa: PLC0415
        parse_until,
        set_mute,
        unmute,
    )
    from worker.utc import utcnow  # noqa: PLC0415

    settings = _settings()
    if not database_ready(settings, "mute"):
        return 2
    sessions = _sessions(settings)
    if args.off:
        print(
            f"{args.story_id} unmuted"
            if unmute(sessions, args.story_id)
            else f"{args.story_id} was not muted"
        )
        return 0
    until = parse_until(args.until or "")
    if isinstance(until, str):
        print(f"storywatch: mute --until: {until}", file=sys.stderr)
        return 2
    refused = set_mute(sessions, args.story_id, until, utcnow())
    if refused is not None:
        print(f"storywatch: {refused.reason}", file=sys.stderr)
        return 1
    print(f"{args.story_id} muted " + (f"until {until.isoformat()}" if until else "for good"))
    return 0
