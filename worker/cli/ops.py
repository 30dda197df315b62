"""Operator commands: `storywatch status`, `storywatch alerts list|retry|test`, `storywatch health`.

`worker.cli.main` calls `register(subparsers)`; each handler takes `(args, extra)` and
returns the exit code. Exit codes: 0 all is well; 1 the command worked and found a problem
(a stale feed, a dead delivery, a failed test alert, an unhealthy dependency, an unknown
alert); 2 the command could not run (configuration or an unreadable database).

What this module must not do: import prometheus_client or Celery at import time
(`worker.cli.main` imports it before `storywatch worker` chooses prometheus_client's
multiprocess mode, and offline commands stay light), or query the store itself (that is
`worker.store.ops` and `worker.store.alerts`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from worker.alerts.payloads import sample_alert
from worker.cli.ops_report import alert_to_json, render_alerts, render_status, report_to_json
from worker.cli.ready import database_ready
from worker.models import CONSOLE, DestinationConfig
from worker.observe.logs import configure_logging, register_secrets
from worker.settings import Settings, load_settings

DEFAULT_LIST_LIMIT = 20


def register(subparsers: Any) -> None:
    """Add the operator commands to `storywatch`'s subcommand parsers."""
    status = subparsers.add_parser(
        "status",
        help="feeds, hosts and the outbox at a glance (exit 1: no feed reachable, a stale "
        "feed or a dead delivery)",
        description="Exit status: 0 healthy; 1 no feed was reached yet, a feed is stale or "
        "stopped, or a delivery is dead; 2 the database or configuration could not be read.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--hours", type=_hours, default=24.0, help="window of the per-host rates (default 24)"
    )
    status.set_defaults(handler=_status)

    alerts = subparsers.add_parser("alerts", help="list, retry or test alert deliveries")
    commands = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    listing = commands.add_parser("list", help="alerts, newest first, with their deliveries")
    listing.add_argument("--status", choices=("pending", "failed", "dead", "delivered"))
    listing.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_alerts_list)
    retry = commands.add_parser(
        "retry", help="move dead (or failed) deliveries back to pending and enqueue them"
    )
    retry.add_argument("alert_id", nargs="?", help="retry this alert's dead and failed deliveries")
    retry.add_argument("--dead", action="store_true", help="retry every dead delivery")
    retry.set_defaults(handler=_alerts_retry)
    test = commands.add_parser("test", help="send a sample alert to a destination, now")
    test.add_argument("destination", help="a destination id from destinations.toml")
    test.set_defaults(handler=_alerts_test)

    feeds = subparsers.add_parser("feeds", help="act on one feed")
    feed_commands = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    resume = feed_commands.add_parser(
        "resume", help="poll a stopped feed (410, repeated 404) again, now"
    )
    resume.add_argument("feed_id", help="a feed id, as `storywatch status` shows it")
    resume.set_defaults(handler=_feeds_resume)
    remove = feed_commands.add_parser(
        "remove", help="stop watching a feed added on the desk or by OPML import"
    )
    remove.add_argument("feed_id", help="a feed id, as `storywatch status` shows it")
    remove.set_defaults(handler=_feeds_remove)

    prune = subparsers.add_parser(
        "prune",
        help="delete processed items, old articles' text and delivered deliveries now "
        "(the service does it daily; ages from STORYWATCH_KEEP_*_DAYS)",
    )
    prune.set_defaults(handler=_prune)

    health = subparsers.add_parser(
        "health", help="does the database (and Redis, when configured) answer? exit 0 or 1"
    )
    health.set_defaults(handler=_health)


def _settings(*, sends: bool = False) -> Settings:
    """Settings for an operator command; one that `sends` alerts needs every destination's
    secret, the others (reading the database) do not."""
    settings = load_settings(service=sends)
    configure_logging(settings.log_level, settings.log_format)  # logs go to stderr
    register_secrets(
        [settings.redis_url, settings.database_url]
        + [d.url for d in settings.destinations]
        + [d.secret for d in settings.destinations]
    )
    return settings


def _unreadable(exc: Exception) -> int:
    print(
        f"storywatch: cannot read the database ({type(exc).__name__}); "
        "has `storywatch init` run against it?",
        file=sys.stderr,
    )
    return 2


# ---------------------------------------------------------------------------------------
# status


def _status(args: argparse.Namespace, _extra: list[str]) -> int:
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from worker.store import ops  # noqa: PLC0415
    from worker.utc import utcnow  # noqa: PLC0415

    settings = _settings()
    sessions = ops.reader_sessions(settings.database_url)
    try:
        with sessions() as session:
            report = ops.status_report(
                session,
                utcnow(),
                configured_destinations=tuple(d.id for d in settings.destinations),
                host_window=timedelta(hours=args.hours),
            )
    except SQLAlchemyError as exc:
        return _unreadable(exc)
    if args.json:
        print(json.dumps(report_to_json(report), indent=2, ensure_ascii=False))
    else:
        print(render_status(report))
    return 0 if report.healthy else 1


# ---------------------------------------------------------------------------------------
# alerts


def _alerts_list(args: argparse.Namespace, _extra: list[str]) -> int:
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from worker.store import alerts as store_alerts  # noqa: PLC0415
    from worker.store import ops  # noqa: PLC0415

    settings = _settings()
    sessions = ops.reader_sessions(settings.database_url)
    try:
        with sessions() as session:
            alerts = store_alerts.list_alerts(session, status=args.status, limit=max(args.limit, 1))
    except SQLAlchemyError as exc:
        return _unreadable(exc)
    if args.json:
        print(json.dumps([alert_to_json(a) for a in alerts], indent=2, ensure_ascii=False))
        return 0
    print(render_alerts(alerts, args.status))
    return 0


def _alerts_retry(args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.pipeline.runtime import open_runtime  # noqa: PLC0415
    from worker.store import alerts as store_alerts  # noqa: PLC0415
    from worker.store.engine import transaction  # noqa: PLC0415

    if bool(args.alert_id) == bool(args.dead):
        print("storywatch: alerts retry: give an alert ID or --dead (not both)", file=sys.stderr)
        return 2
    settings = _settings(sends=True)
    if not database_ready(settings, "alerts retry"):
        return 2
    runtime = open_runtime(settings, run_migrations=False)
    try:
        with transaction(runtime.sessions) as session:
            if args.alert_id and not store_alerts.alert_exists(session, args.alert_id):
                print(f"storywatch: no alert {args.alert_id}", file=sys.stderr)
                return 1
            result = store_alerts.retry_deliveries(session, runtime.clock(), alert_id=args.alert_id)
    finally:
        runtime.close()
    if not result.deliveries:
        print("nothing to retry: no dead" + (" or failed" if args.alert_id else "") + " delivery")
        return 0
    print(
        f"moved {result.deliveries} delivery(ies) of {len(result.alert_ids)} alert(s) "
        "back to pending, due now"
    )
    from worker.service.enqueue import enqueue_deliveries  # noqa: PLC0415

    problem = enqueue_deliveries(settings, result.alert_ids)
    if problem is None:
        print(f"enqueued storywatch.deliver_alert for {len(result.alert_ids)} alert(s)")
    else:
        print(
            f"could not reach the broker ({problem}); nothing is lost: the scheduler's sweep "
            "delivers them on its next tick, since they are pending and due"
        )
    return 0


def _alerts_test(args: argparse.Namespace, _extra: list[str]) -> int:
    import httpx  # noqa: PLC0415

    from worker.delivery.notify import TIMEOUT_SECONDS, deliver  # noqa: PLC0415

    settings = _settings(sends=True)
    destinations: dict[str, DestinationConfig] = {CONSOLE.id: CONSOLE}
    destinations.update({d.id: d for d in settings.destinations})
    destination = destinations.get(args.destination)
    if destination is None:
        known = ", ".join(sorted(destinations))
        print(f"storywatch: no destination {args.destination!r} (known: {known})", file=sys.stderr)
        return 2
    alert = sample_alert()
    with httpx.Client(timeout=httpx.Timeout(TIMEOUT_SECONDS), follow_redirects=False) as client:
        outcome = deliver(alert, destination, client=client, stream=sys.stderr)
    code = f" (HTTP {outcome.status_code})" if outcome.status_code else ""
    if outcome.ok:
        print(f"test alert {alert.id} delivered to {destination.id} ({destination.kind}){code}")
        return 0
    kind = "permanent" if outcome.permanent else "transient"
    print(
        f"test alert {alert.id} to {destination.id} ({destination.kind}) failed{code}, "
        f"{kind}: {outcome.error}"
    )
    return 1


# ---------------------------------------------------------------------------------------
# feeds


def _feeds_resume(args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.store import subscriptions  # noqa: PLC0415
    from worker.store.engine import make_engine, make_sessions, transaction  # noqa: PLC0415
    from worker.utc import utcnow  # noqa: PLC0415

    settings = _settings()
    if not database_ready(settings, "feeds resume"):
        return 2
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_sessions(engine)) as session:
            found = subscriptions.resume(session, args.feed_id, utcnow())
    finally:
        engine.dispose()
    if found != "resumed":
        why = (
            f"no feed {args.feed_id!r}"
            if found == "missing"
            else f"feed {args.feed_id} is not watched (it left feeds.toml, or the desk stopped "
            "watching it): add it again to poll it"
        )
        print(f"storywatch: {why}", file=sys.stderr)
        return 1
    print(f"feed {args.feed_id} will be polled at the next tick")
    return 0


def _feeds_remove(args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.pipeline.desk import stop_watching  # noqa: PLC0415
    from worker.store.engine import make_engine, make_sessions  # noqa: PLC0415

    settings = _settings()
    if not database_ready(settings, "feeds remove"):
        return 2
    engine = make_engine(settings.database_url)
    try:
        refused = stop_watching(make_sessions(engine), args.feed_id)
    finally:
        engine.dispose()
    if refused is not None:
        print(f"storywatch: {refused.reason}", file=sys.stderr)
        return 1
    print(f"feed {args.feed_id} is no longer watched (its history stays)")
    return 0


def _hours(raw: str) -> float:
    """A window of hours: positive and finite (argparse reports anything else)."""
    try:
        hours = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {raw!r}") from None
    if not 0 < hours <= 24 * 365:
        raise argparse.ArgumentTypeError(f"{raw} hours: give more than 0, at most a year")
    return hours


def _prune(_args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.pipeline import open_runtime, prune  # noqa: PLC0415

    settings = _settings()
    # Nothing to prune in a database the service never set up; opening it would make it.
    if not database_ready(settings, "prune"):
        return 2
    runtime = open_runtime(settings, run_migrations=False)
    try:
        summary = prune(runtime)
    finally:
        runtime.close()
    print(
        f"pruned {summary.items} item(s), the text of {summary.articles_trimmed} article(s), "
        f"{summary.deliveries} delivered delivery(ies)"
    )
    return 0


# ---------------------------------------------------------------------------------------
# health


def _health(_args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.observe.server import check_health  # noqa: PLC0415
    from worker.store import ops  # noqa: PLC0415

    settings = _settings()
    sessions = ops.reader_sessions(settings.database_url)
    health = check_health(sessions, settings.redis_url)
    print(json.dumps(health.to_json(), indent=2))
    return 0 if health.ok else 1
