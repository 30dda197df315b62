"""End to end: the service alerts on a later official finding, not on a same-day rewrite.

Issue 13: a feed held two items published the same day, a year after the crash the seed
story is about: an official finding (Kazakhstan's interim report) and a wire rewrite of the
crash itself (the death toll, a deputy prime minister's name, survivors counted
differently). The finding must alert, once; the rewrite, which tells what the story knew
in other words, must not. This test is built from two other real dev items of the same
kinds (`tests/fixtures/followups/finding_and_rewrite.json`, copied from
shared/data/seed-followups/dev.jsonl with their gold labels): fu-010, Russia's investigators
close the criminal case (a development), and fu-013, a wire report of the crash (a rehash).

Both are served as today's news from a local site and judged by a real `storywatch run`
against the shipped, dated corpus; the order in which the service meets them must not
matter, so both orders are run.
"""

from __future__ import annotations

import html
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import write_config
from tests.service import log_size, service_env, start, stop, wait_for_quiet_ticks, wait_until

FOLLOWUPS = Path(__file__).parent / "fixtures" / "followups" / "finding_and_rewrite.json"
pytestmark = pytest.mark.slow


@dataclass
class Receiver:
    requests: list[dict[str, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(json.loads(request.get_data()))
        return Response("accepted", status=202)


def _page(title: str, text: str) -> str:
    paragraphs = "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n") if p.strip())
    return (
        f'<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><article><h1>{html.escape(title)}</h1>{paragraphs}</article></body></html>"
    )


@pytest.mark.parametrize("rewrite_first", [True, False], ids=["rewrite-first", "finding-first"])
def test_a_later_official_finding_alerts_and_a_same_day_rewrite_does_not(
    tmp_path: Path, httpserver: HTTPServer, rewrite_first: bool
) -> None:
    items = json.loads(FOLLOWUPS.read_text(encoding="utf-8"))
    finding, rewrite = items["official_finding"], items["same_day_rewrite"]
    assert finding["gold"]["label"] == "new_development" and rewrite["gold"]["label"] == "rehash"
    now = datetime.now(UTC).replace(microsecond=0)
    # Both published today, an hour apart; the earlier one is met first either way a
    # backlog is read.
    first, second = (rewrite, finding) if rewrite_first else (finding, rewrite)
    entries = [
        (first, "first", now - timedelta(hours=2)),
        (second, "second", now - timedelta(hours=1)),
    ]
    rss_items = "".join(
        f"<item><title>{html.escape(item['title'])}</title>"
        f"<link>{httpserver.url_for('/' + slug)}</link><guid>{slug}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for item, slug, published in entries
    )
    httpserver.expect_request("/feed.xml").respond_with_data(
        f"<rss version='2.0'><channel><title>Wire</title>{rss_items}</channel></rss>",
        content_type="application/rss+xml",
    )
    for item, slug, _ in entries:
        httpserver.expect_request("/" + slug).respond_with_data(
            _page(item["title"], item["text"]), content_type="text/html; charset=utf-8"
        )
    receiver = Receiver()
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver.handle)

    config = write_config(
        tmp_path,
        feeds=f'[[feeds]]\nid = "wire"\nurl = "{httpserver.url_for("/feed.xml")}"\n'
        "poll_every_seconds = 2\n",
        destinations='[[destinations]]\nid = "hook"\nkind = "webhook"\n'
        'url_env = "E2E_URL"\nsecret_env = "E2E_SECRET"\n',
    )
    env = service_env(
        config,
        tmp_path / "var",
        STORYWATCH_ALLOW_PRIVATE_NETWORKS="true",
        E2E_URL=httpserver.url_for("/hook"),
        E2E_SECRET="whsec_" + "c3Rvcnl3YXRjaC1qdWRnZW1lbnQtdGVzdA==",
    )
    database = tmp_path / "var" / "storywatch.db"

    def query(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(database, timeout=30) as connection:
            return connection.execute(sql).fetchall()

    def settled() -> bool:
        try:
            done = query("select count(*) from items where status = 'done'")[0][0]
            waiting = query(
                "select count(*) from deliveries where kind = 'alert' and status != 'delivered'"
            )[0][0]
        except sqlite3.OperationalError:  # not created yet
            return False
        return done == 2 and waiting == 0

    service = start(["run"], env, tmp_path)
    try:
        wait_until(
            lambda: database.exists() and settled(),
            120,
            "both items judged",
            tmp_path / "service.log",
        )
        log = tmp_path / "service.log"
        wait_for_quiet_ticks(log, log_size(log))  # nothing left that could alert again
    finally:
        stop([service])

    outcomes = dict(query("select key, outcome from items"))
    by_item = {"first": first, "second": second}
    judged = {by_item[str(key).removeprefix("guid:")]["dev_id"]: o for key, o in outcomes.items()}
    assert judged == {finding["dev_id"]: "development", rewrite["dev_id"]: "rehash"}, judged
    assert len(receiver.requests) == 1, receiver.requests
    [alert] = receiver.requests
    article = alert["article"]
    assert isinstance(article, dict) and article["title"] == finding["title"]
    facts = alert["new_facts"]
    assert isinstance(facts, list) and facts
    # The quotes say what changed: the case was closed, not who wrote about it.
    assert any("terminated" in fact or "criminal case" in fact for fact in facts), facts
