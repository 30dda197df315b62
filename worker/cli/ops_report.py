"""How operator reports look: ops dataclasses as JSON-ready dicts and as text tables.

Pure: no database, no printing, no argument parsing (`worker.cli.ops` does those). The JSON
shapes are what monitoring scripts read from `storywatch status --json` and
`storywatch alerts list --json`: add keys freely, never rename or remove one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from worker.alerts.payloads import iso_utc

if TYPE_CHECKING:  # ops pulls in SQLAlchemy; `storywatch --help` should not need it
    from worker.store.alerts import AlertSummary
    from worker.store.ops import FeedStatus, StatusReport


def report_to_json(report: StatusReport) -> dict[str, Any]:
    now = report.generated_at
    return {
        "generated_at": iso_utc(now),
        "healthy": report.healthy,
        "feeds": [
            {
                "id": f.id,
                "url": f.url,
                "title": f.title,
                "enabled": f.enabled,
                "poll_every_seconds": f.poll_every_seconds,
                "last_success_at": iso_utc(f.last_success_at),
                "last_checked_at": iso_utc(f.last_checked_at),
                "last_status": f.last_status,
                "error_count": f.error_count,
                "last_error": f.last_error,
                "next_check_at": iso_utc(f.next_check_at),
                "items_last_poll": f.items_last_poll,
                "items_total": f.items_total,
                "stale": f.stale,
                "stale_reason": f.stale_reason,
                "reachable": f.reachable,
                "moved_to": f.moved_to,
                "stopped": f.stopped,
            }
            for f in report.feeds
        ],
        "feeds_reachable": report.reachable_feeds,
        "feeds_polled": len(report.polled_feeds),
        "hosts": {
            "window_hours": report.host_window.total_seconds() / 3600,
            "hosts": [
                {
                    "host": h.host,
                    "articles": h.articles,
                    "extraction_fallbacks": h.summary_fallbacks,
                    "extraction_fallback_rate": round(h.fallback_rate, 4),
                    "items": h.items,
                    "items_failed": h.items_failed,
                    "item_failure_rate": round(h.failure_rate, 4),
                }
                for h in report.hosts
            ],
        },
        "destinations": [
            {
                "id": d.id,
                "configured": d.configured,
                "pending": d.pending,
                "failed": d.failed,
                "dead": d.dead,
                "delivered": d.delivered,
                "oldest_waiting_seconds": (
                    round((now - d.oldest_waiting_at).total_seconds(), 1)
                    if d.oldest_waiting_at
                    else None
                ),
            }
            for d in report.destinations
        ],
        "totals": {"items": report.items_by_outcome, "developments": report.developments},
    }


def render_status(report: StatusReport) -> str:
    now = report.generated_at
    stale = len(report.stale_feeds)
    reachable = f"{report.reachable_feeds} of {len(report.polled_feeds)} feeds reachable"
    lines = [f"FEEDS ({len(report.feeds)}, {stale} stale; {reachable})"]
    lines += _table(
        (
            "FEED",
            "ENABLED",
            "LAST SUCCESS",
            "LAST CHECK",
            "HTTP",
            "ERRORS",
            "NEXT CHECK",
            "NEW",
            "TOTAL",
            "STATE",
        ),
        [_feed_row(f, now) for f in report.feeds],
    )
    for feed in report.feeds:
        if feed.moved_to:
            lines.append(f"  {feed.id}: moved permanently to {feed.moved_to} (polled there)")
        if feed.last_error:
            lines.append(f"  {feed.id}: {feed.url}\n    last error: {feed.last_error}")
    hours = report.host_window.total_seconds() / 3600
    lines += ["", f"SOURCE HOSTS (last {hours:g} h)"]
    lines += _table(
        ("HOST", "ARTICLES", "FALLBACK", "ITEMS", "FAILED"),
        [
            (
                h.host,
                str(h.articles),
                _percent(h.fallback_rate, h.articles),
                str(h.items),
                _percent(h.failure_rate, h.items),
            )
            for h in report.hosts
        ],
    )
    lines += ["", "DESTINATIONS"]
    lines += _table(
        ("DESTINATION", "PENDING", "FAILED", "DEAD", "DELIVERED", "OLDEST WAITING"),
        [
            (
                d.id + ("" if d.configured else " (not configured)"),
                str(d.pending),
                str(d.failed),
                str(d.dead),
                str(d.delivered),
                _duration((now - d.oldest_waiting_at).total_seconds())
                if d.oldest_waiting_at
                else "-",
            )
            for d in report.destinations
        ],
    )
    outcomes = ", ".join(f"{k} {v}" for k, v in report.items_by_outcome.items()) or "none"
    lines += ["", f"ITEMS: {outcomes}", f"DEVELOPMENTS: {report.developments}", ""]
    if report.healthy:
        lines.append("OK")
    else:
        lines.append(
            f"ATTENTION: {reachable}, {stale} stale feed(s), "
            f"{report.dead_deliveries} dead delivery(ies) (exit status 1); replay dead ones"
            " with `storywatch alerts retry --dead`"
        )
    return "\n".join(lines)


def _feed_row(feed: FeedStatus, now: datetime) -> tuple[str, ...]:
    state = f"STALE: {feed.stale_reason}" if feed.stale else ("ok" if feed.enabled else "off")
    return (
        feed.id,
        "yes" if feed.enabled else "no",
        _ago(feed.last_success_at, now),
        _ago(feed.last_checked_at, now),
        str(feed.last_status) if feed.last_status is not None else "-",
        str(feed.error_count),
        "never (stopped)"
        if feed.stopped
        else ("never (off)" if not feed.enabled else _ago(feed.next_check_at, now)),
        str(feed.items_last_poll),
        str(feed.items_total),
        state,
    )


def alert_to_json(alert: AlertSummary) -> dict[str, Any]:
    return {
        "id": alert.id,
        "story": {"id": alert.story_id, "title": alert.story_title},
        "article": {"title": alert.article_title, "url": alert.article_url},
        "created_at": iso_utc(alert.created_at),
        "deliveries": [
            {
                "destination": d.destination_id,
                "kind": d.kind,
                "status": d.status,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "last_status_code": d.last_status_code,
                "next_attempt_at": iso_utc(d.next_attempt_at),
                "delivered_at": iso_utc(d.delivered_at),
            }
            for d in alert.deliveries
        ],
        "also_reported_by": [
            {"source": source, "url": url} for source, url in alert.also_reported_by
        ],
    }


# ---------------------------------------------------------------------------------------
# Formatting


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return ["  (none)"]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    return f"{_duration(seconds)} ago" if seconds >= 0 else f"in {_duration(-seconds)}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _percent(rate: float, total: int) -> str:
    return f"{rate:.0%}" if total else "-"


def render_alerts(alerts: tuple[AlertSummary, ...], status: str | None) -> str:
    lines: list[str] = []
    for alert in alerts:
        lines.append(
            f"{alert.id}  {iso_utc(alert.created_at)}  {alert.story_title or alert.story_id}"
        )
        lines.append(f"  article: {alert.article_title or '(untitled)'}  {alert.article_url or ''}")
        if alert.also_reported_by:
            lines.append(f"  also reported by {len(alert.also_reported_by)}:")
            lines.extend(
                f"    {source or '(unknown source)'}  {url or ''}".rstrip()
                for source, url in alert.also_reported_by
            )
        for d in alert.deliveries:
            code = f", HTTP {d.last_status_code}" if d.last_status_code else ""
            error = f": {d.last_error}" if d.last_error and d.status != "delivered" else ""
            lines.append(
                f"  -> {d.destination_id}{' (update)' if d.kind == 'update' else ''}: "
                f"{d.status} (attempts {d.attempts}{code}){error}"
            )
    lines.append(f"{len(alerts)} alert(s)" + (f" with a {status} delivery" if status else ""))
    return "\n".join(lines)
