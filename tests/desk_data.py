"""A database filled the way the service fills it: real dev-set articles served from a
local site, polled and processed by the pipeline, their alerts delivered to a receiver
that refuses them (so the desk has dead deliveries to show and retry)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.conftest import write_config
from worker import pipeline
from worker.decide.replay import parse_published
from worker.pipeline.runtime import Runtime
from worker.settings import load_settings

ITEMS = Path(__file__).parent / "fixtures" / "followups" / "desk_items.json"
SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWRlbGl2ZXJpZXM="


@dataclass(frozen=True)
class Filled:
    runtime: Runtime
    outcomes: list[str]  # of every item, in the order processed
    alerts: list[str]
    environ: dict[str, str]


def page(title: str, text: str) -> str:
    paragraphs = "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n") if p.strip())
    return (
        f'<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><article><h1>{html.escape(title)}</h1>{paragraphs}</article></body></html>"
    )


def _pub_date(raw: object) -> str:
    """An RSS pubDate as the dev set dates the item (month-only dates on the 1st), or
    none: some items are undated, as some feeds' are."""
    published = parse_published(raw)
    return f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""


def dev_items() -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(ITEMS.read_text(encoding="utf-8"))["items"]
    return items


def fill(
    tmp_path: Path,
    site: HTTPServer,
    *,
    items: list[dict[str, object]] | None = None,
    database_url: str | None = None,
    **env: str,
) -> Filled:
    """Serve the dev items (by default the fixture's) as one feed and their pages, poll
    and process everything, and try each alert's delivery once (the receiver answers
    400: each delivery is dead)."""
    items = dev_items() if items is None else items
    entries = []
    for item in items:
        slug = f"/a/{item['id']}"
        title = str(item["title"] or item["id"])
        site.expect_request(slug).respond_with_data(
            page(title, str(item["text"])), content_type="text/html"
        )
        entries.append(
            f"<item><title>{html.escape(title)}</title><link>{site.url_for(slug)}</link>"
            f"<guid>{item['id']}</guid>"
            f"{_pub_date(item['published'])}</item>"
        )
    site.expect_request("/feed.xml").respond_with_data(
        f"<rss version='2.0'><channel><title>Dev wire</title>{''.join(entries)}</channel></rss>",
        content_type="application/rss+xml",
    )
    site.expect_request("/hook").respond_with_data("no", status=400)
    feeds = f'[[feeds]]\nid = "wire"\nurl = "{site.url_for("/feed.xml")}"\n'
    destinations = (
        f'[[destinations]]\nid = "hook"\nkind = "webhook"\nurl = "{site.url_for("/hook")}"\n'
        'secret_env = "DESK_SECRET"\n'
    )
    config = write_config(tmp_path, feeds=feeds, destinations=destinations)
    environ = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
        "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
        "STORYWATCH_FETCH_TIMEOUT_SECONDS": "10",
        "DESK_SECRET": SECRET,
        **env,
    }
    if database_url:
        environ["STORYWATCH_DATABASE_URL"] = database_url
    runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
    pipeline.initialise(runtime)
    outcomes: list[str] = []
    alerts: list[str] = []
    while ids := list(pipeline.poll_feed(runtime, "wire").new_item_ids):  # 100 a poll
        for item_id in ids:
            result = pipeline.process_item(runtime, item_id)
            outcomes.append(result.outcome)
            if result.alert_id:
                alerts.append(result.alert_id)
                pipeline.deliver_alert(runtime, result.alert_id)
    return Filled(runtime, outcomes, alerts, environ)
