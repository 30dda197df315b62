"""The story desk, driven over HTTP against a real server (uvicorn on a free port) and a
database filled by the pipeline from real dev-set articles."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from tests.desk_data import Filled, fill
from tests.service import free_port
from tests.test_cli import storywatch
from worker.feeds.discover import read_opml
from worker.settings import load_settings
from worker.store.engine import transaction
from worker.store.schema import (
    Alert,
    Delivery,
    Development,
    Feed,
    Feedback,
    StoryFact,
    StoryMute,
    StoryReport,
)
from worker.web.app import create_app
from worker.web.serve import desk_for

TOKEN = "desk-token-for-tests-0123456789"


@dataclass
class Server:
    url: str
    filled: Filled
    site: HTTPServer

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    site = HTTPServer(host="127.0.0.1", port=0)
    site.start()
    filled = fill(tmp_path_factory.mktemp("desk"), site)
    settings = load_settings({**filled.environ, "STORYWATCH_WEB_TOKEN": TOKEN}, dotenv=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(desk_for(settings)), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield Server(f"http://127.0.0.1:{port}", filled, site)
    server.should_exit = True
    thread.join(timeout=10)
    filled.runtime.close()
    site.stop()


def signed_in(desk: Server) -> tuple[httpx.Client, str]:
    """A browser that signed in, and the CSRF field its forms carry."""
    client = desk.client()
    answer = client.post("/login", data={"token": TOKEN})
    assert answer.status_code == 303 and "storywatch_token" in answer.cookies
    assert TOKEN not in answer.cookies["storywatch_token"]  # a keyed hash, not the token
    page = client.get("/feeds").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client, csrf


def test_the_replay_made_developments_rehashes_and_dead_deliveries(desk: Server) -> None:
    outcomes = desk.filled.outcomes
    assert outcomes.count("development") >= 5 and outcomes.count("rehash") >= 2
    assert "unmatched" in outcomes and len(desk.filled.alerts) == outcomes.count("development")


def test_the_stories_page_lists_every_story_with_its_latest_development(desk: Server) -> None:
    stories = desk.client().get("/api/stories").json()
    with desk.client() as client:
        page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert len(stories) >= 5
    for story in stories:
        assert story["title"] in page.text.replace("&#39;", "'").replace("&amp;", "&")
    developed = [s for s in stories if s["latest"]]
    assert developed and all(s["developments"] > 0 for s in developed)
    # The dead deliveries are flagged at the top.
    assert "gave up" in page.text


def test_a_story_page_shows_its_developments_facts_sources_and_folded_reports(
    desk: Server,
) -> None:
    stories = desk.client().get("/api/stories").json()
    story = max(stories, key=lambda s: s["developments"])
    detail = desk.client().get(f"/api/stories/{story['id']}").json()
    assert len(detail["developments"]) == story["developments"]
    assert detail["reports"], "a story with developments also folded rehashes under it"
    page = desk.client().get(f"/stories/{story['id']}").text
    fact = detail["developments"][0]["new_facts"][0]
    assert _text(fact) in _text(page)
    assert detail["developments"][0]["url"] in page
    assert "Reports folded under it" in page and detail["documents"][0] in page
    assert desk.client().get("/stories/no-such-story").status_code == 404


def test_feeds_and_alerts_pages_and_their_api_twins(desk: Server) -> None:
    client = desk.client()
    feeds = client.get("/api/feeds").json()
    assert [f["id"] for f in feeds] == ["wire"] and feeds[0]["items_total"] == len(
        desk.filled.outcomes
    )
    assert "Dev wire" in client.get("/feeds").text
    alerts = client.get("/api/alerts?limit=1000").json()
    assert sorted(a["id"] for a in alerts) == sorted(desk.filled.alerts)
    assert all(d["status"] == "dead" for a in alerts for d in a["deliveries"])
    assert alerts[0]["id"] in client.get("/alerts").text


def test_atom_feeds_of_a_story_and_of_every_alert_parse_as_atom(desk: Server) -> None:
    ns = {"a": "http://www.w3.org/2005/Atom"}
    client = desk.client()
    everything = ET.fromstring(client.get("/alerts/feed.xml").content)
    assert len(everything.findall("a:entry", ns)) == len(desk.filled.alerts)
    story = max(client.get("/api/stories").json(), key=lambda s: s["developments"])
    answer = client.get(f"/stories/{story['id']}/feed.xml")
    assert answer.headers["content-type"].startswith("application/atom+xml")
    entries = ET.fromstring(answer.content).findall("a:entry", ns)
    assert len(entries) == story["developments"]
    assert all(e.find("a:link", ns) is not None for e in entries)


def test_writes_without_the_token_are_refused(desk: Server) -> None:
    client = desk.client()
    alert = desk.filled.alerts[0]
    body = {"alert": alert, "verdict": "not-new"}
    assert client.post("/api/feedback", json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token-at-all-000"}
    assert client.post("/api/feedback", json=body, headers=wrong).status_code == 403
    # A browser that did not sign in, and a signed-in one without the CSRF field.
    assert client.post("/feedback", data={"alert": alert, "verdict": "not-new"}).status_code == 403
    browser, _ = signed_in(desk)
    assert browser.post("/feedback", data={"alert": alert, "verdict": "not-new"}).status_code == 403
    assert browser.post("/login", data={"token": "guess"}).status_code == 200  # the form again
    # A browser's cookie, copied, is no API token.
    copied = {"Authorization": f"Bearer {browser.cookies['storywatch_token']}"}
    assert client.post("/api/feedback", json=body, headers=copied).status_code == 403
    with transaction(desk.filled.runtime.sessions) as session:
        assert session.scalars(select(Feedback)).all() == []


def test_feedback_through_the_api_and_a_form_is_recorded_once(desk: Server) -> None:
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    first, second = desk.filled.alerts[:2]
    answer = client.post("/api/feedback", json={"alert": first, "verdict": "not-new"})
    assert answer.status_code == 201 and answer.json()["verdict"] == "not-new"
    assert (
        client.post("/api/feedback", json={"alert": first, "verdict": "not-new"}).status_code == 200
    )
    assert (
        client.post("/api/feedback", json={"alert": "nope", "verdict": "not-new"}).status_code
        == 400
    )
    assert client.post("/api/feedback", json={"alert": first, "verdict": "meh"}).status_code == 400
    browser, csrf = signed_in(desk)
    story = client.get("/api/alerts?limit=1000").json()
    story_of = {a["id"]: a["story_id"] for a in story}[second]
    back = f"/stories/{story_of}"
    answer = browser.post(
        "/feedback", data={"alert": second, "verdict": "wrong-story", "csrf": csrf, "back": back}
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith(back)
    page = browser.get(answer.headers["location"]).text
    assert "recorded: wrong story" in page and "wrong-story on article" in page
    with transaction(desk.filled.runtime.sessions) as session:
        given = {(f.alert_id, f.verdict) for f in session.scalars(select(Feedback))}
    assert {(first, "not-new"), (second, "wrong-story")} <= given


def test_a_muted_story_records_its_alerts_but_sends_nothing(desk: Server) -> None:
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    story = max(client.get("/api/stories").json(), key=lambda s: s["reports"])
    target = story["id"]
    past = client.post("/api/mute", json={"story": target, "until": "2000-01-01"})
    assert past.status_code == 400
    assert client.post("/api/mute", json={"story": "nope"}).status_code == 400
    answer = client.post("/api/mute", json={"story": target})
    assert answer.status_code == 200 and answer.json()["until"] is None
    assert {s["id"]: s["muted"] for s in client.get("/api/stories").json()}[target] is True
    # A development of the muted story: recorded, shown, not sent.
    reports = client.get(f"/api/stories/{target}").json()["reports"]
    rehash = [r for r in reports if r["copy_of"] is None][-1]
    body = {"article": rehash["article_id"], "story": target, "verdict": "development"}
    made = client.post("/api/feedback", json=body).json()["alert_id"]
    with transaction(desk.filled.runtime.sessions) as session:
        assert session.get(StoryMute, target) is not None
        assert session.get(Alert, made) is not None
        assert not session.scalars(select(Delivery).where(Delivery.alert_id == made)).all()
    assert "not sent (muted)" in desk.client().get("/alerts").text
    assert client.post("/api/mute", json={"story": target, "off": True}).json()["was_muted"]


def test_add_a_feed_by_a_site_address_that_names_it(desk: Server) -> None:
    site = desk.site
    site.expect_request("/blog/").respond_with_data(
        '<html><head><link rel="alternate" type="application/rss+xml" title="Blog" '
        'href="/blog/rss"></head><body>hi</body></html>',
        content_type="text/html",
    )
    site.expect_request("/blog/rss").respond_with_data(
        "<rss version='2.0'><channel><title>The blog</title></channel></rss>",
        content_type="application/rss+xml",
    )
    site.expect_request("/nothing").respond_with_data(
        "<html>no feed</html>", content_type="text/html"
    )
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    answer = client.post("/api/feeds", json={"url": site.url_for("/blog/")})
    assert answer.status_code == 201, answer.text
    added = answer.json()
    assert added["url"] == site.url_for("/blog/rss") and added["title"] == "The blog"
    assert added["discovered_from"] == site.url_for("/blog/")
    again = client.post("/api/feeds", json={"url": site.url_for("/blog/rss")})
    assert again.status_code == 400 and "already watched" in again.json()["error"]
    none = client.post("/api/feeds", json={"url": site.url_for("/nothing")})
    assert none.status_code == 400 and "neither a feed nor a page" in none.json()["error"]
    assert client.post("/api/feeds", json={"url": "file:///etc/passwd"}).status_code == 400


def test_opml_of_200_feeds_imports_in_one_request_skipping_duplicates(desk: Server) -> None:
    outlines = "".join(
        f'<outline text="Feed {n}" xmlUrl="https://news{n % 150}.example/rss"/>' for n in range(200)
    )
    document = (
        f'<opml version="2.0"><body><outline text="folder">{outlines}</outline>'
        f'<outline text="bad" xmlUrl="ftp://x/y"/></body></opml>'
    )
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    answer = client.post("/api/feeds/opml", content=document.encode())
    assert answer.status_code == 200
    result = answer.json()
    # 150 distinct addresses among the 200 outlines: each of the 50 repeats is reported,
    # as is the bad scheme; a second import skips all 150 as already watched.
    assert len(result["added"]) == 150
    reasons = [s["why"] for s in result["skipped"]]
    assert reasons.count("listed earlier in this document") == 50
    assert reasons[-1] == "not an http(s) address" and len(reasons) == 51
    again = client.post("/api/feeds/opml", content=document.encode()).json()
    assert (
        not again["added"] and sum("already watched" in s["why"] for s in again["skipped"]) == 150
    )
    exported = read_opml(client.get("/feeds.opml").content)
    watched = {f["url"] for f in client.get("/api/feeds").json() if f["enabled"]}
    assert {o.url for o in exported} == watched and len(watched) >= 151
    assert client.post("/api/feeds/opml", content=b"<html/>").status_code == 400
    with transaction(desk.filled.runtime.sessions) as session:
        origins = {f.origin for f in session.scalars(select(Feed).where(Feed.id != "wire"))}
    assert origins == {"desk"}


def test_stop_watching_a_desk_feed_then_watch_it_again(desk: Server) -> None:
    site = desk.site
    for path in ("/stop/rss", "/stop-form/rss"):
        site.expect_request(path).respond_with_data(
            "<rss version='2.0'><channel><title>To stop</title></channel></rss>",
            content_type="application/rss+xml",
        )
    api = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    feed_id = api.post("/api/feeds", json={"url": site.url_for("/stop/rss")}).json()["feed_id"]

    def listed() -> dict[str, dict[str, object]]:
        return {f["id"]: f for f in api.get("/api/feeds").json()}

    assert listed()[feed_id]["origin"] == "desk" and listed()[feed_id]["enabled"] is True
    assert desk.client().delete(f"/api/feeds/{feed_id}").status_code == 401
    stopped = api.delete(f"/api/feeds/{feed_id}")
    assert stopped.status_code == 200 and stopped.json() == {"id": feed_id, "enabled": False}
    assert listed()[feed_id]["enabled"] is False  # kept, with its history, but not polled
    exported = {o.url for o in read_opml(api.get("/feeds.opml").content)}
    assert site.url_for("/stop/rss") not in exported
    assert api.delete(f"/api/feeds/{feed_id}").status_code == 200  # already stopped: the same
    wire = api.delete("/api/feeds/wire")
    assert wire.status_code == 409 and "feeds.toml" in wire.json()["error"]
    assert api.delete("/api/feeds/no-such-feed").status_code == 404
    assert listed()["wire"]["enabled"] is True
    again = api.post("/api/feeds", json={"url": site.url_for("/stop/rss")})
    assert again.status_code == 201 and again.json()["feed_id"] == feed_id
    assert listed()[feed_id]["enabled"] is True

    # On the page: only a feed the desk added has the button, and it works.
    other = api.post("/api/feeds", json={"url": site.url_for("/stop-form/rss")}).json()["feed_id"]
    browser, csrf = signed_in(desk)
    page = browser.get("/feeds").text
    row = page.split(site.url_for("/stop-form/rss"), 1)[1].split("</tr>", 1)[0]
    assert "Stop watching" in row and f'value="{other}"' in row
    wire_row = page.split(f"<td>{listed()['wire']['title'] or 'wire'}<br>", 1)[1].split("</tr>")[0]
    assert "Stop watching" not in wire_row
    answer = browser.post("/feeds/remove", data={"feed": other, "csrf": csrf, "back": "/feeds"})
    assert answer.status_code == 303
    shown = browser.get(answer.headers["location"]).text
    assert f"stopped watching {other}" in shown
    row = shown.split(site.url_for("/stop-form/rss"), 1)[1].split("</tr>", 1)[0]
    assert "no longer watched" in row and "Stop watching" not in row
    refused = browser.post("/feeds/remove", data={"feed": "wire", "csrf": csrf, "back": "/feeds"})
    assert "listed in feeds.toml" in browser.get(refused.headers["location"]).text
    assert listed()["wire"]["enabled"] is True


def test_a_report_promoted_to_a_development_is_no_longer_another_outlets_report(
    desk: Server,
) -> None:
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    # A report the story took to repeat one of its developments ("also reported by").
    found = [
        (story["id"], development, report)
        for story in client.get("/api/stories").json()
        for detail in [client.get(f"/api/stories/{story['id']}").json()]
        for development in detail["developments"]
        for report in detail["reports"]
        if report["copy_of"] is None
        and report["url"] in {o["url"] for o in development["also_reported"]}
    ]
    assert found, "the replay recorded no rewrite on a development: nothing to test"
    story_id, development, report = found[0]
    alerts = {a["id"]: a for a in client.get("/api/alerts?limit=1000").json()}
    assert report["url"] in {url for _, url in alerts[development["alert_id"]]["also_reported_by"]}
    body = {"article": report["article_id"], "story": story_id, "verdict": "development"}
    assert client.post("/api/feedback", json=body).status_code == 201

    detail = client.get(f"/api/stories/{story_id}").json()
    [same] = [d for d in detail["developments"] if d["id"] == development["id"]]
    assert report["url"] not in {o["url"] for o in same["also_reported"]}
    alerts = {a["id"]: a for a in client.get("/api/alerts?limit=1000").json()}
    assert report["url"] not in {u for _, u in alerts[development["alert_id"]]["also_reported_by"]}
    assert report["url"] in {d["url"] for d in detail["developments"]}  # its own now


def test_retry_moves_dead_deliveries_back_to_pending(desk: Server) -> None:
    browser, csrf = signed_in(desk)
    assert "Retry every dead delivery" in browser.get("/alerts").text
    alert = desk.filled.alerts[-1]
    answer = browser.post("/alerts/retry", data={"alert": alert, "csrf": csrf, "back": "/alerts"})
    assert answer.status_code == 303
    shown = browser.get(answer.headers["location"]).text
    assert f"{alert}: 1 delivery(ies) back to pending" in shown
    assert 'pending</strong> <span class="muted">due' in shown
    with transaction(desk.filled.runtime.sessions) as session:
        statuses = set(
            session.scalars(select(Delivery.status).where(Delivery.alert_id == alert)).all()
        )
        assert session.get(Alert, alert) is not None
    assert statuses == {"pending"}


def test_a_form_cannot_redirect_off_the_site(desk: Server) -> None:
    browser, csrf = signed_in(desk)
    answer = browser.post(
        "/feedback",
        data={"alert": "x", "verdict": "not-new", "csrf": csrf, "back": "//evil.example/"},
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/?")


def test_reads_are_refused_to_other_machines_unless_public(desk: Server) -> None:
    from starlette.testclient import TestClient  # noqa: PLC0415 - its client is "testclient"

    environ = desk.filled.environ
    closed = TestClient(create_app(desk_for(load_settings(environ, dotenv=False))))
    assert closed.get("/api/stories").status_code == 403
    assert closed.get("/").status_code == 403
    public = load_settings({**environ, "STORYWATCH_WEB_PUBLIC_READS": "true"}, dotenv=False)
    assert TestClient(create_app(desk_for(public))).get("/api/stories").status_code == 200


def _text(value: str) -> str:
    return " ".join(
        value.replace("&#39;", "'").replace("&quot;", '"').replace("&amp;", "&").split()
    )


def test_feedback_and_mute_from_the_terminal(desk: Server, tmp_path: Path) -> None:
    env = {**os.environ, **desk.filled.environ}
    alert = desk.filled.alerts[2]
    given = storywatch(
        "feedback", alert, "not-new", "--note", "known since May", cwd=tmp_path, env=env
    )
    assert given.returncode == 0, given.stderr
    assert "recorded: not-new" in given.stdout
    again = storywatch("feedback", alert, "not-new", cwd=tmp_path, env=env)
    assert again.returncode == 0 and "already recorded" in again.stdout
    missing = storywatch("feedback", "no-such-alert", "wrong-story", cwd=tmp_path, env=env)
    assert missing.returncode == 1 and "no alert no-such-alert" in missing.stderr
    story = desk.client().get("/api/stories").json()[-1]["id"]
    muted = storywatch("mute", story, "--until", "2099-01-31", cwd=tmp_path, env=env)
    assert muted.returncode == 0, muted.stderr
    with transaction(desk.filled.runtime.sessions) as session:
        row = session.get(StoryMute, story)
        assert row is not None and row.until is not None and row.until.year == 2099
    assert storywatch("mute", story, "--until", "someday", cwd=tmp_path, env=env).returncode == 2
    assert storywatch("mute", "no-such-story", cwd=tmp_path, env=env).returncode == 1
    off = storywatch("mute", story, "--off", cwd=tmp_path, env=env)
    assert off.returncode == 0 and "unmuted" in off.stdout


def test_verdicts_change_what_every_worker_knows(desk: Server) -> None:
    from worker.store import knowledge  # noqa: PLC0415

    runtime = desk.filled.runtime
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    alerts = {a["id"]: a for a in client.get("/api/alerts?limit=1000").json()}
    alert = desk.filled.alerts[3]
    story_id = alerts[alert]["story_id"]
    with transaction(runtime.sessions) as session:
        version = knowledge.stories_version(session)
        article_id = session.scalar(
            select(Development.article_id).join(Alert).where(Alert.id == alert)
        )
        assert session.scalars(select(StoryFact).where(StoryFact.article_id == article_id)).all()
    answer = client.post("/api/feedback", json={"alert": alert, "verdict": "wrong-story"})
    assert answer.status_code == 201
    with transaction(runtime.sessions) as session:
        assert knowledge.stories_version(session) != version
        assert not session.scalars(
            select(StoryFact).where(StoryFact.article_id == article_id)
        ).all()
        assert not session.scalars(
            select(StoryReport).where(StoryReport.article_id == article_id)
        ).all()
        tracker = runtime.trackers.current(session)  # a worker's next item rebuilds it
    assert story_id in tracker._rejected

    # "This was a development" on a rehash: alerted now, to the story's destinations.
    story = max(client.get("/api/stories").json(), key=lambda s: s["reports"])
    reports = client.get(f"/api/stories/{story['id']}").json()["reports"]
    rehash = next(r for r in reports if r["copy_of"] is None)
    body = {"article": rehash["article_id"], "story": story["id"], "verdict": "development"}
    answer = client.post("/api/feedback", json=body)
    assert answer.status_code == 201, answer.text
    made = answer.json()["alert_id"]
    listed = {a["id"]: a for a in client.get("/api/alerts?limit=1000").json()}
    # Titled as the story, though the desk's process holds no tracker to ask.
    assert made in listed and listed[made]["story_title"] == story["title"]
    again = client.post("/api/feedback", json=body)
    assert again.status_code == 400 and "already made a development" in again.json()["error"]
    with transaction(runtime.sessions) as session:
        assert session.scalars(select(Delivery).where(Delivery.alert_id == made)).all()


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("STORYWATCH_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed; .ci/run installs Debian's package")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return found


def _rendered(browser: str, url: str, tmp_path: Path) -> str:
    """The page's DOM after a headless Chromium loaded it."""
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_a_person_sees_the_stories_and_a_developments_fact_in_chromium(
    desk: Server, tmp_path: Path
) -> None:
    browser = _chromium()
    stories = desk.client().get("/api/stories").json()
    home = _text(_rendered(browser, desk.url + "/", tmp_path))
    assert "<h1>Stories</h1>" in home
    for story in stories:
        assert _text(story["title"]) in home
    assert "Traceback" not in home and "Internal Server Error" not in home
    story = max(stories, key=lambda s: s["developments"])
    detail = desk.client().get(f"/api/stories/{story['id']}").json()
    shown = _text(_rendered(browser, f"{desk.url}/stories/{story['id']}", tmp_path))
    assert _text(detail["developments"][0]["new_facts"][0]) in shown
    assert "Developments" in shown and "Traceback" not in shown


def test_the_desk_alone_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STORYWATCH_CONFIG_DIR": str(Path(__file__).resolve().parents[1] / "config"),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
    }
    env.pop("STORYWATCH_DATABASE_URL", None)
    result = storywatch("web", "--port", str(free_port()), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "run `storywatch init`" in result.stderr


def test_pages_answer_while_a_worker_holds_the_write_lock(desk: Server) -> None:
    """On SQLite the pipeline's transactions take the write lock (BEGIN IMMEDIATE): the
    desk reads from snapshots that take none, so a page neither waits for an item's
    transaction nor holds one up."""
    from worker.store.schema import Meta  # noqa: PLC0415

    with transaction(desk.filled.runtime.sessions) as session:
        session.merge(Meta(key="test-write-lock", value="held"))
        session.flush()  # the write lock is held until this transaction ends
        started = time.monotonic()
        answer = desk.client().get("/api/stories", timeout=5)
        assert answer.status_code == 200 and answer.json()
        assert time.monotonic() - started < 3


def test_hostile_api_input_is_a_clean_refusal_never_a_server_error(desk: Server) -> None:
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    deep = "[" * 100_000 + "]" * 100_000
    nested = client.post("/api/feedback", content=deep.encode())
    assert nested.status_code == 400 and "nested too deep" in nested.json()["error"]
    story = client.get("/api/stories").json()[0]["id"]
    huge = {"article": 10**23, "story": story, "verdict": "development"}
    assert client.post("/api/feedback", json=huge).status_code == 400
    surrogate = b'{"alert": "\\ud800", "verdict": "not-new"}'
    answer = client.post("/api/feedback", content=surrogate)
    assert answer.status_code == 400 and "surrogate" in answer.json()["error"]
    nul = client.post("/api/mute", json={"story": "a\x00b"})
    assert nul.status_code == 400 and "NUL" in nul.json()["error"]
    assert client.post("/api/feeds", json={"url": "http://[::1/x"}).status_code == 400
    assert client.get("/api/stories/a%00b").status_code == 404
    assert client.get("/stories/a%00b/feed.xml").status_code == 404
    retry = client.post("/api/alerts/retry", json={"alert": "alrt_nope"})
    assert retry.status_code == 404 and "no alert alrt_nope" in retry.json()["error"]
    assert client.post("/api/mute", json={"story": story, "until": 20990101}).status_code == 400
    browser, csrf = signed_in(desk)
    for article in ("\u00b2", "99999999999999999999999"):
        form = {"article": article, "story": story, "verdict": "development", "csrf": csrf}
        answer = browser.post("/feedback", data=form)
        assert answer.status_code == 303 and "not%20recorded" in answer.headers["location"]


def test_an_alert_cannot_be_judged_both_not_new_and_wrong_story(desk: Server) -> None:
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    alert = desk.filled.alerts[4]
    first = client.post("/api/feedback", json={"alert": alert, "verdict": "not-new"})
    assert first.status_code == 201
    contrary = client.post("/api/feedback", json={"alert": alert, "verdict": "wrong-story"})
    assert contrary.status_code == 400 and "judged not-new already" in contrary.json()["error"]


def test_a_verdicts_note_is_shown_on_the_story_page_and_in_the_api(desk: Server) -> None:
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    alert = desk.filled.alerts[5]
    body = {"alert": alert, "verdict": "not-new", "note": "the wire had it on Monday"}
    assert client.post("/api/feedback", json=body).status_code == 201
    story = {a["id"]: a["story_id"] for a in client.get("/api/alerts?limit=1000").json()}[alert]
    notes = [v["note"] for v in client.get(f"/api/stories/{story}").json()["feedback"]]
    assert "the wire had it on Monday" in notes
    assert "the wire had it on Monday" in client.get(f"/stories/{story}").text


def test_an_unmatched_report_can_be_given_to_a_story_as_a_development(desk: Server) -> None:
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    unmatched = client.get("/api/unmatched").json()
    assert len(unmatched) == desk.filled.outcomes.count("unmatched")
    report = unmatched[0]
    browser, csrf = signed_in(desk)
    page = browser.get("/unmatched").text
    assert "This was a development" in page and f'value="{report["article_id"]}"' in page
    story = client.get("/api/stories").json()[0]
    before = client.get(f"/api/stories/{story['id']}").json()
    form = {
        "article": str(report["article_id"]),
        "story": story["id"],
        "verdict": "development",
        "csrf": csrf,
        "back": "/unmatched",
    }
    answer = browser.post("/feedback", data=form)
    assert (
        answer.status_code == 303
        and "recorded%3A%20this%20was%20a%20development" in answer.headers["location"]
    )
    after = client.get(f"/api/stories/{story['id']}").json()
    assert len(after["developments"]) == len(before["developments"]) + 1
    assert report["article_id"] in {d["article_id"] for d in after["developments"]}
    assert report["article_id"] not in {
        r["article_id"] for r in client.get("/api/unmatched").json()
    }
    with transaction(desk.filled.runtime.sessions) as session:
        # The story learned it as a match: its sentences and one report.
        assert session.scalars(
            select(StoryFact).where(StoryFact.article_id == report["article_id"])
        ).all()
        reports = session.scalars(
            select(StoryReport).where(StoryReport.article_id == report["article_id"])
        ).all()
        assert [r.story_id for r in reports] == [story["id"]]
    # An article that is neither a report of the story nor unmatched is refused.
    other = client.get("/api/stories").json()[1]["id"]
    body = {"article": report["article_id"], "story": other, "verdict": "development"}
    refused = client.post("/api/feedback", json=body)
    assert refused.status_code == 400 and "neither a report" in refused.json()["error"]


def test_a_story_timeline_runs_newest_first_by_date(desk: Server) -> None:
    client = desk.client()
    for story in client.get("/api/stories").json():
        developments = client.get(f"/api/stories/{story['id']}").json()["developments"]
        shown = [d["published"] or d["detected_at"] for d in developments]
        assert shown == sorted(shown, reverse=True), story["id"]
        # The latest is the newest still counted: one judged "wrong story" is not.
        counted = [d for d in developments if "wrong-story" not in d["verdicts"]]
        assert story["developments"] == len(counted)
        assert (story["latest"] or {}).get("id") == (counted[0]["id"] if counted else None)


def test_a_control_character_in_a_title_leaves_the_atom_feed_readable() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    from worker.web.syndication import Entry, atom  # noqa: PLC0415

    now = datetime(2026, 12, 6, tzinfo=UTC)
    entry = Entry("urn:x:1", "COP29 \x01 climate deal \x08 row", None, now, "s\x0bum", "src\x02")
    document = atom(
        feed_id="urn:x",
        title="t\x1f",
        self_url="http://h/",
        alternate="http://h/",
        entries=[entry],
        updated=now,
    )
    parsed = ET.fromstring(document)
    title = parsed.find("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title")
    assert title is not None and title.text == "COP29   climate deal   row"


def test_a_development_judged_wrong_story_is_shown_struck_and_not_counted(desk: Server) -> None:
    client = desk.client(headers={"Authorization": f"Bearer {TOKEN}"})
    alerts = {a["id"]: a for a in client.get("/api/alerts?limit=1000").json()}
    alert = desk.filled.alerts[6]
    story = alerts[alert]["story_id"]
    before = {s["id"]: s for s in client.get("/api/stories").json()}[story]
    assert (
        client.post("/api/feedback", json={"alert": alert, "verdict": "wrong-story"}).status_code
        == 201
    )
    after = {s["id"]: s for s in client.get("/api/stories").json()}[story]
    assert after["developments"] == before["developments"] - 1
    detail = client.get(f"/api/stories/{story}").json()["developments"]
    [judged] = [d for d in detail if d["alert_id"] == alert]
    assert judged["verdicts"] == ["wrong-story"]
    assert "not counted as one of its developments" in client.get(f"/stories/{story}").text
    feed = client.get(f"/stories/{story}/feed.xml").text
    assert f"urn:storywatch:development:{judged['id']}<" not in feed


def test_a_refused_form_says_why_and_leads_back_through_sign_in(desk: Server) -> None:
    browser = desk.client()
    answer = browser.post(
        "/feedback",
        data={"alert": "x", "verdict": "not-new"},
        headers={"Referer": f"{desk.url}/alerts"},
    )
    assert answer.status_code == 403 and "text/html" in answer.headers["content-type"]
    assert 'href="/login?back=/alerts"' in answer.text
    assert desk.client().get("/stories/no-such-story").status_code == 404
    signed, _ = signed_in(desk)
    back = signed.post("/login", data={"token": TOKEN, "back": "/alerts"})
    assert back.status_code == 303 and back.headers["location"].startswith("/alerts?")
    out = signed.post("/logout")
    assert out.status_code == 303 and not signed.cookies.get("storywatch_token")
