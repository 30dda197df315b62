"""Configuration: the documented environment names and TOML files, every error at once."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import write_config
from worker.errors import ConfigError
from worker.pipeline.setup import configured_stories
from worker.settings import load_settings
from worker.stories.corpus import build_stories
from worker.stories.folder import read_corpus


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


# ---------------------------------------------------------------------------------------
# Bounded values: nothing the operator types can silence or crash the service


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e400", "0.1", "7200"])
def test_a_tick_that_is_not_a_finite_number_in_range_is_refused(tmp_path: Path, raw: str) -> None:
    config = write_config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path, STORYWATCH_TICK_SECONDS=raw), dotenv=False)
    assert caught.value.problems == [
        f"STORYWATCH_TICK_SECONDS: expected a number from 0.5 to 3600, got {raw!r}"
    ]


@pytest.mark.parametrize(
    "name",
    [
        "STORYWATCH_MAX_RESPONSE_BYTES",
        "STORYWATCH_FETCH_TIMEOUT_SECONDS",
        "STORYWATCH_MAX_KNOWN_SENTENCES",
    ],
)
@pytest.mark.parametrize("raw", ["nan", "inf", "1e30"])
def test_byte_caps_and_timeouts_must_be_finite_and_bounded(
    tmp_path: Path, name: str, raw: str
) -> None:
    config = write_config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path, **{name: raw}), dotenv=False)
    [problem] = caught.value.problems
    assert problem.startswith(f"{name}: expected a number from ") and problem.endswith(repr(raw))


def test_the_bound_on_what_a_story_keeps_reaches_the_deciding_tracker(tmp_path: Path) -> None:
    from worker.pipeline.runtime import tracker_config  # noqa: PLC0415

    config = write_config(tmp_path)
    default = load_settings(env_for(config, tmp_path), dotenv=False)
    assert tracker_config(default).max_known_sentences == 20_000
    bounded = load_settings(
        env_for(config, tmp_path, STORYWATCH_MAX_KNOWN_SENTENCES="5000"), dotenv=False
    )
    assert tracker_config(bounded).max_known_sentences == 5_000
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path, STORYWATCH_MAX_KNOWN_SENTENCES="10"), dotenv=False)
    assert caught.value.problems == [
        "STORYWATCH_MAX_KNOWN_SENTENCES: expected a number from 1000 to 1000000, got '10'"
    ]


def test_a_poll_interval_past_a_week_and_an_infinite_rate_are_refused(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        feeds='[[feeds]]\nid = "f"\nurl = "https://a/rss"\n'
        "poll_every_seconds = 9223372036854775807\n",
        destinations='[[destinations]]\nid = "j"\nkind = "jsonl"\nmax_per_second = inf\n'
        '\n[[destinations]]\nid = "k"\nkind = "jsonl"\nmax_per_second = nan\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path), dotenv=False)
    assert caught.value.problems == [
        "feeds.toml: feeds[0].poll_every_seconds: must be from 1 to 604800 (a week)",
        "destinations.toml: destinations[0].max_per_second: must be above 0 and at most 1000",
        "destinations.toml: destinations[1].max_per_second: must be above 0 and at most 1000",
    ]


def test_a_toml_file_that_is_not_utf8_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (config / "feeds.toml").write_bytes(b'[[feeds]]\ntitle = "caf\xe9"\nurl = "https://a/rss"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path), dotenv=False)
    assert caught.value.problems == ["feeds.toml: not UTF-8 (byte 22): TOML files are UTF-8"]


def test_a_data_dir_that_is_a_file_or_under_one_is_reported(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    for data_dir, why in [(blocker, "is not a directory"), (blocker / "var", "is not writable")]:
        with pytest.raises(ConfigError) as caught:
            load_settings(
                env_for(config, tmp_path, STORYWATCH_DATA_DIR=str(data_dir)), dotenv=False
            )
        [problem] = caught.value.problems
        assert problem.startswith(f"STORYWATCH_DATA_DIR: {data_dir} {why}")
    # A command that writes nothing there does not care.
    environ = env_for(config, tmp_path, STORYWATCH_DATA_DIR=str(blocker))
    assert load_settings(environ, dotenv=False, service=False).data_dir == blocker


def test_binary_empty_and_textless_corpus_files_are_named(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("The ferry sank off the coast on Tuesday.\n", encoding="utf-8")
    # One stray byte in a document of text is replaced, not refused.
    (corpus / "stray.txt").write_bytes(b"A stray byte \xff in a line. " + b"Text goes on. " * 20)
    (corpus / "image.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "latin1.txt").write_bytes(bytes(range(128, 256)) * 4)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "numbers.txt").write_text("2024 12 28\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_corpus(corpus)
    assert [problem.split(": ", 1) for problem in caught.value.problems] == [
        [f"{corpus}/empty.txt", "holds no text; write the article's text into it, or remove it"],
        [
            f"{corpus}/image.txt",
            "not a text file (it holds NUL bytes); corpus documents are UTF-8 text",
        ],
        [f"{corpus}/latin1.txt", "not UTF-8 text (512 undecodable bytes); save it as UTF-8"],
        [f"{corpus}/numbers.txt", "holds no text; write the article's text into it, or remove it"],
    ]


def test_a_corpus_that_builds_no_story_stops_the_service_before_it_runs(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.txt").write_text("Date: 2024-12-28\n\nshort\n", encoding="utf-8")
    config = write_config(tmp_path, corpus=corpus)
    settings = load_settings(env_for(config, tmp_path), dotenv=False)
    documents = read_corpus(settings.corpus_dir)
    with pytest.raises(ConfigError, match="the corpus builds no story"):
        configured_stories(settings, documents)


def test_commands_that_send_nothing_need_no_destination_secret(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "s"\nkind = "slack"\nurl_env = "UNSET_SLACK_URL"\n'
        '\n[[destinations]]\nid = "w"\nkind = "webhook"\nurl_env = "UNSET_HOOK"\n'
        'secret_env = "UNSET_SECRET"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path), dotenv=False)
    assert len(caught.value.problems) == 3
    offline = load_settings(env_for(config, tmp_path), dotenv=False, service=False)
    assert [(d.id, d.url, d.secret) for d in offline.destinations] == [
        ("s", None, None),
        ("w", None, None),
    ]


def test_check_fetches_with_the_configured_timeout_and_size_cap(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(
        env_for(
            config,
            tmp_path,
            STORYWATCH_FETCH_TIMEOUT_SECONDS="3",
            STORYWATCH_MAX_RESPONSE_BYTES="20000",
        ),
        dotenv=False,
        service=False,
    )
    policy = settings.fetch_policy()
    assert (policy.read_timeout, policy.deadline_seconds, policy.max_bytes) == (3.0, 4.5, 20_000)


def test_the_desk_settings_and_a_guessable_token_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(env_for(config, tmp_path), dotenv=False)
    assert (settings.web_host, settings.web_port, settings.web_token) == ("127.0.0.1", 8080, None)
    assert not settings.web_public_reads
    with pytest.raises(ConfigError) as refused:
        load_settings(
            env_for(config, tmp_path, STORYWATCH_WEB_TOKEN="short", STORYWATCH_WEB_PORT="70000"),
            dotenv=False,
        )
    message = str(refused.value)
    assert "STORYWATCH_WEB_TOKEN: use at least 16 characters (it has 5)" in message
    assert "STORYWATCH_WEB_PORT" in message
    assert "short" not in message.replace("(it has 5)", "")  # the token itself is not shown
    good = load_settings(
        env_for(config, tmp_path, STORYWATCH_WEB_TOKEN="x" * 32, STORYWATCH_WEB_PORT="9000"),
        dotenv=False,
    )
    assert (good.web_token, good.web_port) == ("x" * 32, 9000)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("STORYWATCH_DATABASE_URL", "foo://bar", "not 'foo'"),
        ("STORYWATCH_DATABASE_URL", "not a url", "not a database URL"),
        ("STORYWATCH_DATABASE_URL", "mysql+nosuchdriver://u@h/db", "not 'mysql+nosuchdriver'"),
        ("STORYWATCH_REDIS_URL", "notredis://secret@x", "got notredis://"),
        ("STORYWATCH_REDIS_URL", "127.0.0.1:6379", "got no scheme"),
    ],
)
def test_a_database_or_redis_url_nothing_can_open_is_a_problem_at_start(
    tmp_path: Path, name: str, value: str, said: str
) -> None:
    config = write_config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path, **{name: value}), dotenv=False)
    [problem] = caught.value.problems
    assert problem.startswith(f"{name}: ") and said in problem
    assert "secret" not in problem  # a URL is a secret: only its scheme is quoted


def test_a_database_file_that_is_no_database_is_one_line_at_start(tmp_path: Path) -> None:
    from tests.test_cli import storywatch  # noqa: PLC0415

    config = write_config(tmp_path)
    data = tmp_path / "v"
    data.mkdir()
    (data / "storywatch.db").write_text("not a database", encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STORYWATCH_")}
    result = storywatch("init", cwd=tmp_path, env={**environ, **env_for(config, tmp_path)})
    assert result.returncode == 2
    assert "STORYWATCH_DATABASE_URL: cannot open sqlite:///" in result.stderr
    assert "file is not a database" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name",
    ["STORYWATCH_WEB_PORT", "STORYWATCH_MAX_KNOWN_SENTENCES", "STORYWATCH_MAX_RESPONSE_BYTES"],
)
def test_a_count_or_port_with_a_fraction_is_refused_not_rounded(tmp_path: Path, name: str) -> None:
    config = write_config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path, **{name: "20000.5"}), dotenv=False)
    assert caught.value.problems == [f"{name}: expected a whole number, got 20000.5"]
    whole = load_settings(env_for(config, tmp_path, **{name: "2e4"}), dotenv=False)
    assert 20000 in (whole.web_port, whole.max_known_sentences, whole.max_response_bytes)


@pytest.mark.parametrize("raw", ["1_0", "\u0663"])
def test_a_number_written_unusually_is_refused(tmp_path: Path, raw: str) -> None:
    config = write_config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path, STORYWATCH_KEEP_ITEMS_DAYS=raw), dotenv=False)
    assert caught.value.problems == [f"STORYWATCH_KEEP_ITEMS_DAYS: expected a number, got {raw!r}"]


def test_a_webhook_secret_the_signer_cannot_use_is_refused_at_start(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "w"\nkind = "webhook"\nurl = "https://r/x"\n'
        'secret_env = "HOOK_SECRET"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(env_for(config, tmp_path, HOOK_SECRET="whsec_x"), dotenv=False)
    [problem] = caught.value.problems
    assert "secret_env: must name a Standard Webhooks secret" in problem
    assert "whsec_x" not in problem  # the value is the secret
    fine = load_settings(
        env_for(config, tmp_path, HOOK_SECRET="whsec_ZmluZS1zZWNyZXQ="), dotenv=False
    )
    assert fine.destinations[0].secret == "whsec_ZmluZS1zZWNyZXQ="
