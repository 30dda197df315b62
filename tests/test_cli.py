"""The command-line contracts of DESIGN §4: stories, replay, check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.conftest import SEED_CORPUS, write_config

FIXTURES = Path(__file__).parent / "fixtures" / "site"


def storywatch(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - callers assert the return code
        [sys.executable, "-m", "worker", *args],
        cwd=cwd,
        env=env,
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


def test_invalid_configuration_exits_2_listing_every_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path, feeds='[[feeds]]\nurl = "nope"\n[[feeds]]\ncolour = 1\n')
    result = storywatch("init", cwd=tmp_path, env={"STORYWATCH_CONFIG_DIR": str(config)})
    assert result.returncode == 2
    assert "feeds[0].url" in result.stderr and "feeds[1].url: is required" in result.stderr
    assert "feeds[1].colour: unknown key" in result.stderr
