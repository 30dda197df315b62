"""One development, one alert: ten outlets report it, one alert says so, nine are recorded.

Outlet 1 publishes the development; outlets 2-6 syndicate its text in their own pages;
outlets 7-10 write their own versions of the same facts. The development alerts once;
the nine others are recorded on it, and the alert says "also reported by 9 sources".
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, func, select, text
from werkzeug import Request, Response

from tests.conftest import write_config
from tests.service import log_size, service_env, start, stop, wait_for_quiet_ticks, wait_until
from tests.surge_reports import SURGE_REPORTS
from worker import pipeline
from worker.decide.repeats import RecentDevelopment, new_terms, repeated_development
from worker.settings import load_settings
from worker.store import alerts as store_alerts
from worker.store import schema
from worker.store.engine import transaction
from worker.text.terms import content_terms

FIXTURES = Path(__file__).parent / "fixtures"
RSS_ITEM = "<item><title>{t}</title><link>{link}</link><guid>{g}</guid></item>"


def page(site: str, title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<html><head><meta charset="utf-8"><title>{html.escape(title)} | {site}</title>'
        f'<meta property="og:site_name" content="{site}"></head><body>'
        f'<nav><a href="/">{site}</a> <a href="/world">World</a></nav>'
        f"<article><h1>{html.escape(title)}</h1>{body}</article>"
        f"<footer>&copy; {site}</footer></body></html>"
    )


def serve_ten_outlets(httpserver: HTTPServer) -> str:
    """A feed of ten outlets' versions of one development: the original, five syndicated
    copies in other sites' pages, four rewrites. Returns the server's base URL."""
    base = httpserver.url_for("").rstrip("/")
    original = (FIXTURES / "site" / "article-development.html").read_text(encoding="utf-8")
    pages: list[tuple[str, str, str]] = [("/caspian/report", "Final report", original)]
    for n, site in enumerate(
        ["Metro Herald", "Daily Ledger", "Gulf Times", "Eurasia Post", "Steppe News"], start=2
    ):
        copy = original.replace("Caspian Wire", site).replace(
            "<h1>", f"<p>Updated: {n} hours ago. Share this story.</p><h1>"
        )
        pages.append((f"/outlet{n}/story", f"Copy {n}", copy))
    for n, path in enumerate(sorted((FIXTURES / "outlets").glob("rewrite-*.txt")), start=7):
        title, *paragraphs = path.read_text(encoding="utf-8").splitlines()
        pages.append((f"/outlet{n}/story", title, page(f"Outlet {n}", title, paragraphs)))
    assert len(pages) == 10
    # Newest first, as feeds list them: the original was published first, so it is last
    # (an undated feed is taken up oldest first, in the reverse of its order).
    items = "".join(
        RSS_ITEM.format(t=html.escape(t), link=f"{base}{p}", g=f"g{i}")
        for i, (p, t, _) in reversed(list(enumerate(pages)))
    )
    httpserver.expect_request("/feed.xml").respond_with_data(
        f"<rss version='2.0'><channel><title>Wire</title>{items}</channel></rss>"
    )
    for path, _, body in pages:
        httpserver.expect_request(path).respond_with_data(body, content_type="text/html")

    return base


def _embedded_runtime(tmp_path: Path, config: Path) -> pipeline.Runtime:
    """The embedded service's runtime on `config`, initialised, local pages allowed."""
    runtime = pipeline.open_runtime(
        load_settings(
            {
                "STORYWATCH_CONFIG_DIR": str(config),
                "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
                "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
            },
            dotenv=False,
        )
    )
    pipeline.initialise(runtime)
    return runtime


@pytest.mark.parametrize("restart", [False, True], ids=["one-process", "restart-each-item"])
def test_ten_outlets_make_one_alert_with_nine_sources_recorded(
    tmp_path: Path, httpserver: HTTPServer, restart: bool
) -> None:
    """With `restart`, the worker's in-memory tracker is dropped before every item, so
    each report is recognised from what the database holds (facts and developments)."""
    base = serve_ten_outlets(httpserver)
    config = write_config(tmp_path, feeds=f'[[feeds]]\nid = "wire"\nurl = "{base}/feed.xml"\n')
    runtime = _embedded_runtime(tmp_path, config)
    outcomes = []
    for item_id in pipeline.poll_feed(runtime, "wire").new_item_ids:
        if restart:
            runtime.trackers.invalidate()
        outcomes.append(pipeline.process_item(runtime, item_id).outcome)

    with transaction(runtime.sessions) as session:
        alerts = session.scalars(select(schema.Alert)).all()
        sources = session.scalar(select(func.count()).select_from(schema.DevelopmentSource))
        hows = dict(
            session.execute(
                select(schema.DevelopmentSource.how, func.count()).group_by(
                    schema.DevelopmentSource.how
                )
            ).all()
        )
        listing = store_alerts.list_alerts(session)
    runtime.close()
    assert len(listing) == 1, [(a.story_id, a.article_title) for a in listing]
    [listed] = listing
    assert outcomes[0] == "development", outcomes
    # `storywatch alerts list` shows each later report with its link.
    assert len(listed.also_reported_by) == 9
    assert all(url and url.startswith(base) for _, url in listed.also_reported_by)
    assert len(alerts) == 1, outcomes
    assert sources == 9, (outcomes, hows)
    assert hows == {"copy": 5, "rewrite": 4}
    assert alerts[0].content["also_reported_by"] == 9


def test_an_article_on_the_same_story_with_other_facts_repeats_no_development() -> None:
    known = content_terms("Azerbaijan Airlines plane crashed near Aktau, Kazakhstan.")
    development = (
        "Investigators identified 147 metal fragments of a 57E6 missile near Aktau.",
        "Baku will sue Moscow at the International Court of Justice for $410 million.",
    )
    developments = [RecentDevelopment("1", new_terms(development, known))]
    repeat = (
        "Kazakh investigators identified metal fragments of a 57E6 missile in the tail; "
        "Baku says it will sue Moscow at the International Court of Justice."
    )
    other = "Azerbaijan Airlines resumed flights from Aktau to Kazan after a ten-month pause."
    assert repeated_development(repeat, developments) == "1"
    assert repeated_development(other, developments) is None


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_ten_outlets_through_two_workers_on_redis_make_one_alert(
    tmp_path: Path, httpserver: HTTPServer, redis_url: str, postgres_url: str
) -> None:
    """The same, through real workers racing on the items, delivered to a real receiver."""
    base = serve_ten_outlets(httpserver)
    received: list[dict[str, object]] = []

    def hook(request: Request) -> Response:
        received.append(json.loads(request.get_data()))
        return Response("ok")

    receiver = HTTPServer(host="127.0.0.1", port=0)
    receiver.start()
    receiver.expect_request("/hook").respond_with_handler(hook)
    config = write_config(
        tmp_path,
        feeds=f'[[feeds]]\nid = "wire"\nurl = "{base}/feed.xml"\npoll_every_seconds = 60\n',
        destinations='[[destinations]]\nid = "hook"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        'secret_env = "HOOK_SECRET"\n',
    )
    env = service_env(
        config,
        tmp_path / "var",
        STORYWATCH_REDIS_URL=redis_url,
        STORYWATCH_DATABASE_URL=postgres_url,
        STORYWATCH_ALLOW_PRIVATE_NETWORKS="true",
        HOOK_URL=receiver.url_for("/hook"),
        HOOK_SECRET="whsec_dGVuLW91dGxldHMtZTJlLXNlY3JldA==",
    )
    engine = create_engine(postgres_url)

    def count(sql: str) -> int:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())

    def settled() -> bool:
        return (
            count("select count(*) from items") == 10
            and count("select count(*) from items where status = 'new'") == 0
            and count(
                "select count(*) from deliveries where kind = 'alert' and status != 'delivered'"
            )
            == 0
        )

    init = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-m", "worker", "init"], env=env, cwd=tmp_path, capture_output=True
    )
    assert init.returncode == 0, init.stderr[-2000:]
    processes = [
        start(["worker", "--concurrency=2", f"--hostname={name}@%h"], env, tmp_path)
        for name in ("a", "b")
    ] + [start(["beat"], env, tmp_path)]
    try:
        wait_until(settled, 180, "ten items and their alert", tmp_path / "service.log")
        log = tmp_path / "service.log"
        wait_for_quiet_ticks(log, log_size(log))  # nothing left that could alert again
        alerts = count("select count(*) from alerts")
        sources = count("select count(*) from development_sources")
        # Its one follow-up waits for the wave of later reports (FOLLOW_UP_AFTER).
        follow_ups = count("select count(*) from deliveries where kind = 'update'")
        with engine.connect() as connection:
            outcomes = connection.execute(
                text("select key, status, outcome, attempts, error from items order by id")
            ).all()
    finally:
        stop(processes)
        engine.dispose()
        receiver.stop()
    assert alerts == 1 and len(received) == 1, outcomes
    assert sources == 9, outcomes
    assert follow_ups == 1


def test_a_surge_alerts_once_when_each_worker_restores_the_counts_from_the_database(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """Four reports of the crash story in one day, in words it knows (one a copy of the
    first under another site's URL): the third makes a surge alert counting the copy, and
    the fourth is recorded on it, though the tracker is rebuilt from the database before
    every item (reports and the surge flag are persisted)."""
    base = httpserver.url_for("").rstrip("/")
    # The second item is a copy of the first on another site: never decided, but one
    # more report of the story's day.
    pages = [SURGE_REPORTS[0], SURGE_REPORTS[0], *SURGE_REPORTS[1:]]
    items = "".join(
        f"<item><title>{html.escape(title)}</title><link>{base}/s{n}</link><guid>s{n}</guid>"
        f"<pubDate>Fri, 07 Nov 2025 {9 + n:02d}:00:00 GMT</pubDate></item>"
        for n, (title, _) in enumerate(pages)
    )
    httpserver.expect_request("/feed.xml").respond_with_data(
        f"<rss version='2.0'><channel><title>Wire</title>{items}</channel></rss>"
    )
    for n, (title, body) in enumerate(pages):
        httpserver.expect_request(f"/s{n}").respond_with_data(
            # A closing line the story knows too: the whole report is told in known words
            # (a line the story does not know could make the story's first report in
            # months a development of its own, see Tracker's quiet spells).
            page(
                f"Outlet {n}",
                title,
                [body, "Azerbaijan is understood to be conducting its own investigation."],
            ),
            content_type="text/html",
        )
    config = write_config(tmp_path, feeds=f'[[feeds]]\nid = "wire"\nurl = "{base}/feed.xml"\n')
    runtime = _embedded_runtime(tmp_path, config)
    outcomes = []
    for item_id in pipeline.poll_feed(runtime, "wire").new_item_ids:
        runtime.trackers.invalidate()
        outcomes.append(pipeline.process_item(runtime, item_id).outcome)
    with transaction(runtime.sessions) as session:
        developments = session.scalars(select(schema.Development)).all()
        sources = session.scalar(select(func.count()).select_from(schema.DevelopmentSource))
        reports = session.scalar(select(func.count()).select_from(schema.StoryReport))
    runtime.close()
    assert outcomes == ["rehash", "duplicate", "development", "rehash"]
    [development] = developments
    assert development.surge
    assert any(reason.startswith("surge: 3 reports") for reason in development.reasons)
    assert sources == 1
    assert reports == 4
