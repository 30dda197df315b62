"""The command-line contracts of DESIGN §4: stories, replay, check."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from tests.conftest import REPO, SEED_CORPUS, write_config
from worker import pipeline
from worker.settings import load_settings
from worker.store.engine import make_engine, migrate, transaction
from worker.store.schema import StoryFact

FIXTURES = Path(__file__).parent / "fixtures" / "site"


def storywatch(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the child runs this checkout's `worker`, not whatever `pip install -e`
    # points at (pytest's `pythonpath` setting reaches this process only).
    environ = {**(os.environ if env is None else env), "PYTHONPATH": str(REPO)}
    return subprocess.run(  # noqa: PLW1510 - callers assert the return code
        [sys.executable, "-m", "worker", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stories_json_lists_each_story_with_the_contract_fields(tmp_path: Path) -> None:
    result = storywatch("stories", "--corpus", str(SEED_CORPUS), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stories = json.loads(result.stdout)
    assert len(stories) >= 8
    for story in stories:
        assert set(story) == {"id", "title", "key_terms", "documents", "facts", "known_as_of"}
        assert story["facts"] and story["documents"] and story["title"]
    assert len({s["id"] for s in stories}) == len(stories)
    # The shipped corpus is dated (`Date:` first lines): a story is known as of its
    # documents' latest day, the whole of it.
    crash = next(s for s in stories if any("Aktau" in f for f in s["facts"]))
    assert crash["known_as_of"] == "2024-12-28T23:59:59.999999+00:00"


def test_replay_writes_one_decision_per_row_in_input_order(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "title": None, "text": (FIXTURES / "article-rehash.html").read_text()},
        {
            "id": "b",
            "title": "Unrelated",
            "text": "The city council approved a new bus timetable.",
            "published": "2025-03",
            "url": None,
            "source": None,
            "extra": 1,
        },
    ]
    stream = tmp_path / "in.jsonl"
    stream.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "out.jsonl"
    result = storywatch(
        "replay", str(stream), "--corpus", str(SEED_CORPUS), "--output", str(output), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    decisions = [json.loads(line) for line in output.read_text().splitlines()]
    assert [d["id"] for d in decisions] == ["a", "b"]
    for decision in decisions:
        assert set(decision) == {"id", "story", "score", "new_development", "new_facts"}
    assert decisions[1]["story"] is None and decisions[1]["new_development"] is False
    assert not (tmp_path / "var").exists()  # replay keeps no state on disk


def test_check_refuses_loopback_addresses_by_default(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/x").respond_with_data("<html>secret admin page</html>")
    config = write_config(tmp_path)
    env = {"STORYWATCH_CONFIG_DIR": str(config), "PATH": "/usr/bin:/bin"}
    result = storywatch("check", httpserver.url_for("/x"), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "refusing to fetch" in result.stderr and "loopback" in result.stderr
    assert len(httpserver.log) == 0  # nothing was sent to the private address


def test_check_explains_a_decision_when_private_networks_are_allowed(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    page = (FIXTURES / "article-development.html").read_text()
    httpserver.expect_request("/report").respond_with_data(page, content_type="text/html")
    config = write_config(tmp_path)
    env = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
        "PATH": "/usr/bin:/bin",
    }
    result = storywatch("check", httpserver.url_for("/report"), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "story:" in result.stdout and "match score:" in result.stdout
    assert "NEW DEVELOPMENT" in result.stdout


def test_stories_lists_the_ids_even_when_a_destination_routes_a_missing_one(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "desk"\nkind = "console"\nstories = ["typo"]\n',
    )
    env = {"STORYWATCH_CONFIG_DIR": str(config), "STORYWATCH_DATA_DIR": str(tmp_path / "v")}
    listed = storywatch("stories", "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "aktau-grozny-kazakhstan" in {s["id"] for s in json.loads(listed.stdout)}
    assert "warning" in listed.stderr and "'typo'" in listed.stderr
    init = storywatch("init", cwd=tmp_path, env=env)  # the service refuses to start
    assert init.returncode == 2 and "'typo'" in init.stderr


def test_offline_commands_run_before_the_destination_secrets_are_set(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "team"\nkind = "slack"\nurl_env = "UNSET_SLACK"\n',
    )
    env = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
        "PATH": os.environ.get("PATH", ""),
    }
    listed = storywatch("stories", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": "a", "title": "Ferry", "text": "A ferry sank."}) + "\n")
    replayed = storywatch("replay", str(rows), cwd=tmp_path, env=env)
    assert replayed.returncode == 0, replayed.stderr
    page = tmp_path / "page.txt"
    page.write_text("A ferry sank off the coast on Tuesday.", encoding="utf-8")
    checked = storywatch("check", str(page), cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    started = storywatch("init", cwd=tmp_path, env=env)  # the service needs the secret
    assert started.returncode == 2 and "UNSET_SLACK" in started.stderr


def test_invalid_configuration_exits_2_listing_every_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path, feeds='[[feeds]]\nurl = "nope"\n[[feeds]]\ncolour = 1\n')
    result = storywatch("init", cwd=tmp_path, env={"STORYWATCH_CONFIG_DIR": str(config)})
    assert result.returncode == 2
    assert "feeds[0].url" in result.stderr and "feeds[1].url: is required" in result.stderr
    assert "feeds[1].colour: unknown key" in result.stderr


# ---------------------------------------------------------------------------------------
# check: from what the service learned (its database), or from the corpus


REPORT_FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Caspian Wire</title>
<link>https://caspian.example/</link><description>d</description><item>
<title>Kazakhstan's final report: Russian missile fragments brought down AZAL jet</title>
<link>{link}</link><guid isPermaLink="false">azal-final-report</guid>
<description>Kazakhstan published the final report into the AZAL crash.</description>
</item></channel></rss>"""


def service_env(tmp_path: Path, feed_url: str, database_url: str | None = None) -> dict[str, str]:
    feeds = f'[[feeds]]\nid = "local"\nurl = "{feed_url}"\npoll_every_seconds = 60\n'
    env = {
        "STORYWATCH_CONFIG_DIR": str(write_config(tmp_path, feeds=feeds)),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
        "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
        "STORYWATCH_FETCH_TIMEOUT_SECONDS": "10",
        "PATH": "/usr/bin:/bin",
    }
    if database_url:
        env["STORYWATCH_DATABASE_URL"] = database_url
    return env


def learn_the_report(env: dict[str, str], httpserver: HTTPServer) -> int:
    """The service's own path: poll the feed, process the final report's item (a
    development: its facts are learned). Returns the learned facts in the database."""
    feed = REPORT_FEED.format(link=httpserver.url_for("/caspian/azal-final-report"))
    httpserver.expect_request("/feed.xml").respond_with_data(
        feed, content_type="application/rss+xml"
    )
    page = (FIXTURES / "article-development.html").read_text()
    httpserver.expect_request("/caspian/azal-final-report").respond_with_data(
        page, content_type="text/html"
    )
    runtime = pipeline.open_runtime(load_settings(env, dotenv=False), run_migrations=False)
    try:
        (item_id,) = pipeline.poll_feed(runtime, "local").new_item_ids
        assert pipeline.process_item(runtime, item_id).outcome == "development"
        with transaction(runtime.sessions) as session:
            return session.scalar(select(func.count()).select_from(StoryFact)) or 0
    finally:
        runtime.close()


def sqlite_files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_check_answers_a_learned_report_as_a_rehash_and_corpus_answers_it_as_new(
    tmp_path: Path, httpserver: HTTPServer, backend: str, request: pytest.FixtureRequest
) -> None:
    """Once the service has learned the final report, check (from the database) calls the
    same report a rehash; `--corpus` still calls it new, as the corpus alone would."""
    database_url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    env = service_env(tmp_path, httpserver.url_for("/feed.xml"), database_url)
    init = storywatch("init", cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    article = tmp_path / "report.html"
    article.write_text((FIXTURES / "article-development.html").read_text())

    before = storywatch("check", str(article), cwd=tmp_path, env=env)
    assert before.returncode == 0, before.stderr
    assert before.stdout.startswith("answering from the service database (")
    assert "0 learned facts, 0 developments" in before.stdout.splitlines()[0]
    assert "decision: NEW DEVELOPMENT" in before.stdout

    facts = learn_the_report(env, httpserver)
    assert facts > 0
    if backend == "sqlite":
        files = sqlite_files(tmp_path / "var")
    learned = storywatch("check", str(article), cwd=tmp_path, env=env)
    assert learned.returncode == 0, learned.stderr
    header = learned.stdout.splitlines()[0]
    assert re.fullmatch(
        rf"answering from the service database \((sqlite|postgresql)\S+\): "
        rf"\d+ stories, {facts:,} learned facts, 1 developments",
        header,
    ), header
    assert "decision: nothing new (rehash)" in learned.stdout
    assert "NEW DEVELOPMENT" not in learned.stdout
    if backend == "sqlite":  # read-only: not a byte written, no -wal or -shm left behind
        assert sqlite_files(tmp_path / "var") == files

    corpus = storywatch("check", str(article), "--corpus", str(SEED_CORPUS), cwd=tmp_path, env=env)
    assert corpus.returncode == 0, corpus.stderr
    assert corpus.stdout.splitlines()[0] == f"answering from the corpus only ({SEED_CORPUS})"
    assert "decision: NEW DEVELOPMENT" in corpus.stdout


def test_check_without_a_database_answers_from_the_corpus_says_so_and_creates_nothing(
    tmp_path: Path,
) -> None:
    env = service_env(tmp_path, "http://127.0.0.1:9/feed.xml")
    result = storywatch("check", str(FIXTURES / "article-development.html"), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    database = tmp_path / "var" / "storywatch.db"
    assert result.stdout.splitlines()[0] == (
        f"answering from the corpus only ({tmp_path / 'config' / 'corpus'}): "
        f"the service database (sqlite:///{database}) does not exist"
    )
    assert "decision: NEW DEVELOPMENT" in result.stdout
    assert not (tmp_path / "var").exists()  # neither the file nor its folder


def test_check_with_a_database_that_has_no_stories_yet_answers_from_the_corpus(
    tmp_path: Path,
) -> None:
    env = service_env(tmp_path, "http://127.0.0.1:9/feed.xml")
    database = tmp_path / "var" / "storywatch.db"
    engine = make_engine(f"sqlite:///{database}")
    migrate(engine)  # the schema `storywatch init` makes, before it loads any story
    engine.dispose()
    result = storywatch("check", str(FIXTURES / "article-development.html"), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith(
        f"the service database (sqlite:///{database}) has no stories yet"
    )
    assert result.stdout.startswith("answering from the corpus only (")
    assert "decision: NEW DEVELOPMENT" in result.stdout


def test_check_dates_an_undated_article_by_now_as_the_service_would(tmp_path: Path) -> None:
    """A corpus saved "in the future" knows everything published until then: an undated
    article checked now is known to it (the service dates it by the poll that saw it)."""
    import shutil  # noqa: PLC0415

    corpus = tmp_path / "corpus"
    story = corpus / "azal-crash"
    story.mkdir(parents=True)
    original = next(p for p in SEED_CORPUS.glob("004_*.txt"))
    text = original.read_text(encoding="utf-8").split("\n", 2)[2]  # without its Date: line
    (story / "crash.txt").write_text("Date: 2099-01-01\n\n" + text, encoding="utf-8")
    shutil.copy(REPO / "tests" / "fixtures" / "site" / "article-development.html", tmp_path)
    page = tmp_path / "article-development.html"
    undated = page.read_text(encoding="utf-8").replace("article:published_time", "x-removed")
    page.write_text(undated, encoding="utf-8")
    result = storywatch("check", str(page), "--corpus", str(corpus), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "azal-crash" in result.stdout
    assert "known_as_of (2099-01-01" in result.stdout, result.stdout


def test_workers_get_a_node_name_unique_on_the_host_unless_one_is_given() -> None:
    from worker.cli.main import node_name  # noqa: PLC0415

    assert node_name(["--concurrency=2"], 4242) == [
        "--concurrency=2",
        "--hostname=storywatch-4242@%h",
    ]
    assert node_name(["--concurrency=2"], 4242) != node_name(["--concurrency=2"], 4243)
    for given in (["-n", "a@%h"], ["-na@%h"], ["--hostname=a@%h"], ["--hostname", "a@%h"]):
        assert node_name(given, 4242) == given


def test_check_refuses_a_file_larger_than_a_page_the_service_would_read(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
        "STORYWATCH_MAX_RESPONSE_BYTES": "10000",
        "PATH": os.environ.get("PATH", ""),
    }
    page = tmp_path / "page.txt"
    page.write_text("A ferry sank off the coast on Tuesday. " * 300, encoding="utf-8")  # 11,700
    refused = storywatch("check", str(page), cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "STORYWATCH_MAX_RESPONSE_BYTES (10000 bytes)" in refused.stderr
    assert "Traceback" not in refused.stderr
    page.write_text("A ferry sank off the coast on Tuesday. " * 200, encoding="utf-8")  # 7,800
    assert storywatch("check", str(page), cwd=tmp_path, env=env).returncode == 0
