"""Configuration: the documented environment names and TOML files, every error at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import write_config
from worker.config_files import read_corpus
from worker.errors import ConfigError
from worker.pipeline.setup import configured_stories
from worker.settings import load_settings
from worker.stories.corpus import build_stories


def env_for(config: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
        **extra,
    }


def test_defaults_are_embedded_sqlite_and_a_sqlalchemy_broker(tmp_path: Path) -> None:
    config = write_config(tmp_path, feeds='[[feeds]]\nurl = "https://example.org/rss"\n')
    settings = load_settings(env_for(config, tmp_path), dotenv=False)
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith(
        "storywatch.db"
    )
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert not settings.distributed and not settings.allow_private_networks
    [feed] = settings.feeds
    assert (feed.id, feed.poll_every_seconds) == ("example-org-rss", 900)


def test_redis_url_switches_to_distributed_mode(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(
        env_for(config, tmp_path, STORYWATCH_REDIS_URL="redis://127.0.0.1:6379/3"), dotenv=False
    )
    assert settings.distributed and settings.broker_url == "redis://127.0.0.1:6379/3"


def test_every_problem_is_reported_at_once_with_file_and_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        feeds='[[feeds]]\nurl = "ftp://x"\n\n'
        '[[feeds]]\nid = "a"\nurl = "https://a"\npoll_every_seconds = "often"\n'
        '\n[[feeds]]\nid = "a"\nurl = "https://b"\ncolour = "red"\n',
        destinations='[[destinations]]\nid = "s"\nkind = "slack"\nurl_env = "MISSING_SLACK_URL"\n'
        '\n[[destinations]]\nid = "w"\nkind = "webhook"\nurl = "https://r/x"\n'
        'secret_env = "BAD_SECRET"\n'
        '\n[[destinations]]\nid = "p"\nkind = "pager"\n',
        stories='[[stories]]\nid = "x"\ndestinations = ["nowhere"]\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(
            env_for(
                config, tmp_path, STORYWATCH_ALLOW_PRIVATE_NETWORKS="maybe", BAD_SECRET="plain"
            ),
            dotenv=False,
        )
    problems = "\n".join(caught.value.problems)
    expected = [
        "STORYWATCH_ALLOW_PRIVATE_NETWORKS: expected true or false",
        "feeds.toml: feeds[0].url: expected an http(s) URL",
        "feeds.toml: feeds[1].poll_every_seconds: expected int",
        "feeds.toml: feeds[2].id: duplicate id 'a'",
        "feeds.toml: feeds[2].colour: unknown key",
        "destinations.toml: destinations[0].url_env: environment variable MISSING_SLACK_URL",
        "destinations.toml: destinations[1].secret_env: must name a Standard Webhooks secret",
        "destinations.toml: destinations[2].kind: expected one of",
        "stories.toml: stories[0].keywords: a story without `match` needs keywords",
        "stories.toml: stories[0].destinations: unknown destination 'nowhere'",
    ]
    for fragment in expected:
        assert fragment in problems
    assert len(caught.value.problems) >= len(expected)


def test_secrets_come_from_the_environment_or_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("whsec_ZmlsZS1zZWNyZXQ=\n")
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "hook"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        'secret_env = "HOOK_SECRET"\nstories = ["one"]\n',
    )
    settings = load_settings(
        env_for(
            config, tmp_path, HOOK_URL="https://hooks.example/x", HOOK_SECRET_FILE=str(secret_file)
        ),
        dotenv=False,
    )
    [hook] = settings.destinations
    assert hook.url == "https://hooks.example/x" and hook.secret == "whsec_ZmlsZS1zZWNyZXQ="
    assert hook.stories == ("one",)
    assert "whsec" not in repr(hook) and "hooks.example" not in repr(hook)


def test_slack_urls_may_not_be_written_into_config(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "s"\nkind = "slack"\nurl = "https://hooks.slack.com/services/T/B/x"\n',
    )
    with pytest.raises(ConfigError, match="a slack URL is a secret"):
        load_settings(env_for(config, tmp_path), dotenv=False)


def test_the_shipped_configuration_is_valid() -> None:
    repo = Path(__file__).resolve().parent.parent
    settings = load_settings({"STORYWATCH_CONFIG_DIR": str(repo / "config")}, dotenv=False)
    assert len(settings.feeds) >= 5
    assert all(feed.url.startswith("https://") for feed in settings.feeds)
    assert {d.kind for d in settings.destinations} <= {"console", "jsonl"}


def test_a_destination_listed_twice_is_a_configuration_error(tmp_path: Path) -> None:
    """A repeated route would insert two deliveries of one alert to one destination."""
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "out"\nkind = "console"\n',
        stories='[[stories]]\nid = "s"\nkeywords = ["x"]\ndestinations = ["out", "out"]\n',
    )
    with pytest.raises(
        ConfigError, match=r"stories\[0\]\.destinations: listed more than once: out"
    ):
        load_settings(env_for(config, tmp_path), dotenv=False)


def test_known_as_of_dates_every_story_unless_a_rule_dates_its_own(tmp_path: Path) -> None:
    """A TOML date covers its whole day (UTC); a date-time with an offset is converted."""
    config = write_config(
        tmp_path,
        stories="known_as_of = 2024-12-28\n\n"
        '[[stories]]\nid = "crash"\nmatch = "aktau-grozny-kazakhstan"\n'
        "known_as_of = 2025-01-09T12:00:00+02:00\n",
    )
    settings = load_settings(env_for(config, tmp_path), dotenv=False)
    assert settings.known_as_of == datetime(2024, 12, 28, 23, 59, 59, 999999, tzinfo=UTC)
    [rule] = settings.story_rules
    assert rule.known_as_of == datetime(2025, 1, 9, 10, 0, tzinfo=UTC)
    stories = build_stories(
        read_corpus(settings.corpus_dir), settings.story_rules, known_as_of=settings.known_as_of
    )
    dated = {story.id: story.known_as_of for story in stories}
    assert dated.pop("crash") == rule.known_as_of
    assert set(dated.values()) == {settings.known_as_of}


def test_known_as_of_must_be_a_toml_date(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        stories='known_as_of = "last week"\n\n'
        '[[stories]]\nid = "crash"\nmatch = "aktau-grozny-kazakhstan"\nknown_as_of = 12:00:00\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path), dotenv=False)
    assert [p.split(":")[0:2] for p in caught.value.problems] == [
        ["stories.toml", " known_as_of"],
        ["stories.toml", " stories[0].known_as_of"],
    ]


def test_a_destination_routing_a_story_id_that_does_not_exist_is_an_error(
    tmp_path: Path,
) -> None:
    """A renamed story or an edited corpus must not leave a destination silently empty."""
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "desk"\nkind = "console"\n'
        'stories = ["aktau-grozny-kazakhstan", "azerbaijan-airlines-crash"]\n',
    )
    settings = load_settings(env_for(config, tmp_path), dotenv=False)
    documents = read_corpus(settings.corpus_dir)
    with pytest.raises(ConfigError) as caught:
        configured_stories(settings, documents)
    [problem] = caught.value.problems
    assert "'desk'" in problem and "'azerbaijan-airlines-crash'" in problem
    # Once stories.toml gives the story that id, the routing is valid.
    renamed = write_config(
        tmp_path / "renamed",
        destinations='[[destinations]]\nid = "desk"\nkind = "console"\n'
        'stories = ["azerbaijan-airlines-crash"]\n',
        stories='[[stories]]\nid = "azerbaijan-airlines-crash"\n'
        'match = "aktau-grozny-kazakhstan"\n',
    )
    settings = load_settings(env_for(renamed, tmp_path), dotenv=False)
    ids = {story.id for story in configured_stories(settings, documents)}
    assert "azerbaijan-airlines-crash" in ids
