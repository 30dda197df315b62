"""Domain configuration from `config/`: feeds.toml, destinations.toml, stories.toml.

What this module is for: reading the files that say what to watch, where to send alerts
and how to edit the stories built from the corpus, into validated `FeedConfig`,
`DestinationConfig` and `StoryRule` values. Every problem is appended to the caller's
list as `file: key: why` instead of raised, so `worker.settings.load_settings` reports a
whole configuration's problems at once. Secrets never live in these files: destinations
name the environment variable (or `NAME_FILE`) that holds their URL or signing secret,
and `read_secret` reads it. The corpus folder is read by `worker.stories.folder`.

What it must not do: touch the network or the database, or read the environment beyond
the variables a destination names.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from worker.alerts.templates import template_problem
from worker.models import (
    DESTINATION_KINDS,
    ID_PATTERN,
    DestinationConfig,
    FeedConfig,
    StoryRule,
    destination_kind,
)
from worker.utc import as_utc

MAX_POLL_EVERY_SECONDS = 7 * 24 * 3600
MAX_RATE_PER_SECOND = 1_000.0
# Slack allows about one message per second per incoming webhook (api.slack.com/apis/rate-limits).
DEFAULT_RATES = {"slack": 1.0}


def read_secret(environ: Mapping[str, str], name: str, problems: list[str]) -> str | None:
    """`NAME` from the environment, or the contents of the file named by `NAME_FILE`."""
    value = environ.get(name, "").strip()
    if value:
        return value
    path = environ.get(f"{name}_FILE", "").strip()
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        problems.append(f"{name}_FILE: cannot read {path}: {exc.strerror}")
        return None


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path.name}: not valid TOML: {exc}")
    except UnicodeDecodeError as exc:
        problems.append(f"{path.name}: not UTF-8 (byte {exc.start}): TOML files are UTF-8")
    except OSError as exc:
        problems.append(f"{path.name}: cannot read: {exc.strerror}")
    return None


class _Table:
    """One `[[name]]` table, with typed getters that record problems as `file: key: why`."""

    def __init__(self, data: Any, where: str, allowed: set[str], problems: list[str]) -> None:
        self.where = where
        self._problems = problems
        self._data: dict[str, Any] = data if isinstance(data, dict) else {}
        if not isinstance(data, dict):
            self.problem("", "expected a table")
        for key in sorted(set(self._data) - allowed):
            self.problem(key, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def problem(self, key: str, message: str) -> None:
        self._problems.append(f"{self.where}{'.' + key if key else ''}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        if key not in self._data:
            if required:
                self.problem(key, "is required")
            return None
        value = self._data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            self.problem(key, f"expected {names}, got {type(value).__name__}")
            return None
        return value

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.get(key, list)
        if value is None:
            return None
        if not all(isinstance(v, str) and v.strip() for v in value):
            self.problem(key, "expected a list of non-empty strings")
            return None
        items = tuple(v.strip() for v in value)
        repeated = sorted({v for v in items if items.count(v) > 1})
        if repeated:
            self.problem(key, f"listed more than once: {', '.join(repeated)}")
        return tuple(dict.fromkeys(items))


def _tables(
    doc: dict[str, Any] | None,
    name: str,
    file: str,
    problems: list[str],
    top_level: frozenset[str] = frozenset(),
) -> list[Any]:
    if doc is None:
        return []
    for key in sorted(set(doc) - {name} - top_level):
        problems.append(f"{file}: {key}: unknown top-level key (expected [[{name}]] tables)")
    tables = doc.get(name, [])
    if not isinstance(tables, list):
        problems.append(f"{file}: {name}: expected an array of tables ([[{name}]])")
        return []
    return tables


def _unique_id(table: _Table, raw: str | None, fallback: str, seen: set[str]) -> str:
    ident = raw if raw is not None else fallback
    if raw is not None and not ID_PATTERN.match(raw):
        table.problem("id", "use 1-64 lower-case letters, digits, '.', '_' or '-'")
    if ident in seen:
        table.problem("id", f"duplicate id {ident!r}")
    seen.add(ident)
    return ident


def load_feeds(path: Path, problems: list[str]) -> tuple[FeedConfig, ...]:
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for index, data in enumerate(_tables(_read_toml(path, problems), "feeds", path.name, problems)):
        table = _Table(
            data,
            f"{path.name}: feeds[{index}]",
            {"id", "url", "title", "poll_every_seconds"},
            problems,
        )
        url = table.get("url", str, required=True)
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            table.problem("url", f"expected an http(s) URL, got {url!r}")
        every = table.get("poll_every_seconds", int)
        if every is not None and not 1 <= every <= MAX_POLL_EVERY_SECONDS:
            table.problem(
                "poll_every_seconds", f"must be from 1 to {MAX_POLL_EVERY_SECONDS} (a week)"
            )
            every = None
        fallback = feed_id_for(url or f"feed-{index}")
        ident = _unique_id(table, table.get("id", str), fallback, seen)
        if url:
            feeds.append(FeedConfig(ident, url, table.get("title", str), every or 900))
    return tuple(feeds)


def feed_id_for(url: str) -> str:
    """A readable, stable id for a feed without one: host and path, slugged."""
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"^https?://(www\.)?", "", url.lower())).strip("-")
    return slug[:64].rstrip("-") or "feed"


def load_destinations(
    path: Path,
    environ: Mapping[str, str],
    data_dir: Path,
    problems: list[str],
    *,
    secrets: bool = True,
) -> tuple[DestinationConfig, ...]:
    """The destinations; with `secrets=False` (commands that send nothing) a variable
    a destination names may be unset."""
    allowed = {
        "id",
        "kind",
        "url",
        "url_env",
        "secret_env",
        "stories",
        "path",
        "max_per_second",
        "template",
        "template_file",
        "digest_every_minutes",
        "updates",
    }
    result: list[DestinationConfig] = []
    seen: set[str] = set()
    doc = _read_toml(path, problems)
    for index, data in enumerate(_tables(doc, "destinations", path.name, problems)):
        table = _Table(data, f"{path.name}: destinations[{index}]", allowed, problems)
        kind = table.get("kind", str, required=True)
        if kind is not None and kind not in DESTINATION_KINDS:
            table.problem("kind", f"expected one of {', '.join(DESTINATION_KINDS)}, got {kind!r}")
        ident = _unique_id(table, table.get("id", str), kind or f"destination-{index}", seen)
        url = _destination_url(table, kind, environ, problems, secrets=secrets)
        secret = None
        if kind == "webhook":
            secret = _env_value(table, "secret_env", environ, problems, required=secrets)
            if secret is not None and not _signing_secret(secret):
                table.problem(
                    "secret_env",
                    "must name a Standard Webhooks secret (whsec_ followed by base64)",
                )
        elif "secret_env" in (data if isinstance(data, dict) else {}):
            table.problem("secret_env", "only webhook destinations take a signing secret")
        jsonl_path = table.get("path", str)
        if kind == "jsonl":
            jsonl_path = str(data_dir / "alerts.jsonl") if jsonl_path is None else jsonl_path
        rate = table.get("max_per_second", (int, float))
        if rate is not None and not 0 < rate <= MAX_RATE_PER_SECOND:  # nan fails this too
            table.problem("max_per_second", f"must be above 0 and at most {MAX_RATE_PER_SECOND:g}")
            rate = None
        if rate is None and "max_per_second" not in (data if isinstance(data, dict) else {}):
            rate = DEFAULT_RATES.get(kind or "")
        result.append(
            DestinationConfig(
                ident,
                destination_kind(kind),
                url,
                secret,
                jsonl_path,
                table.strings("stories"),
                float(rate) if rate is not None else None,
                _template(table, path.parent),
                _digest_minutes(table),
                updates=table.get("updates", bool) is not False,
            )
        )
    return tuple(result)


def _digest_minutes(table: _Table) -> int | None:
    minutes: int | None = table.get("digest_every_minutes", int)
    if minutes is not None and not 1 <= minutes <= 7 * 24 * 60:
        table.problem("digest_every_minutes", "must be between 1 and 10080 (a week)")
        return None
    return minutes


def _template(table: _Table, config_dir: Path) -> str | None:
    inline: str | None = table.get("template", str)
    file: str | None = table.get("template_file", str)
    if inline is not None and file is not None:
        table.problem("template", "give template or template_file, not both")
        return None
    source, key = inline, "template"
    if file is not None:
        key = "template_file"
        try:
            source = (config_dir / file).read_text(encoding="utf-8")
        except OSError as exc:
            table.problem(key, f"cannot read {config_dir / file}: {exc.strerror or exc}")
            return None
    if source is None:
        return None
    problem = template_problem(source)
    if problem is not None:
        table.problem(key, problem)
        return None
    return source


def _destination_url(
    table: _Table,
    kind: str | None,
    environ: Mapping[str, str],
    problems: list[str],
    *,
    secrets: bool,
) -> str | None:
    if kind not in {"slack", "webhook", "apprise"}:
        return None
    literal: str | None = table.get("url", str)
    if literal is not None and kind in {"slack", "apprise"}:
        # Slack webhook URLs and most Apprise URLs carry their token in the URL itself.
        table.problem("url", f"a {kind} URL is a secret: name its variable with url_env instead")
        return None
    if literal is not None:
        return literal
    url = _env_value(table, "url_env", environ, problems, required=secrets)
    if url is not None and kind != "apprise" and not url.startswith(("http://", "https://")):
        table.problem("url_env", "the variable must hold an http(s) URL")
    return url


def _env_value(
    table: _Table, key: str, environ: Mapping[str, str], problems: list[str], *, required: bool
) -> str | None:
    """The secret held by the variable the table names under `key`; `required`: the key
    must be there and its variable set."""
    name: str | None = table.get(key, str, required=True)
    if name is None:
        return None
    value = read_secret(environ, name, problems)
    if value is None and required:
        table.problem(key, f"environment variable {name} (or {name}_FILE) is not set")
    return value


def _known_as_of_value(value: object) -> datetime | None:
    """A TOML date or date-time as the instant up to which reports are known (UTC).

    A date means the whole day: a report published on it is known. A date-time without
    an offset is read as UTC. Anything else (a string, a time of day) is None.
    """
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time.max, tzinfo=UTC)
    return None


def _known_as_of(data: Mapping[str, Any], where: str, problems: list[str]) -> datetime | None:
    if "known_as_of" not in data:
        return None
    value = _known_as_of_value(data["known_as_of"])
    if value is None:
        problems.append(
            f"{where}known_as_of: expected a TOML date or date-time (known_as_of = 2024-12-28),"
            f" got {data['known_as_of']!r}"
        )
    return value


def load_story_rules(
    path: Path, problems: list[str]
) -> tuple[tuple[StoryRule, ...], datetime | None]:
    """The [[stories]] rules, and the top-level `known_as_of` that dates every story."""
    allowed = {
        "id",
        "match",
        "title",
        "keywords",
        "exclude",
        "merge",
        "destinations",
        "split",
        "known_as_of",
    }
    rules: list[StoryRule] = []
    seen: set[str] = set()
    document = _read_toml(path, problems)
    default = _known_as_of(document or {}, f"{path.name}: ", problems)
    tables = _tables(document, "stories", path.name, problems, frozenset({"known_as_of"}))
    for index, data in enumerate(tables):
        table = _Table(data, f"{path.name}: stories[{index}]", allowed, problems)
        raw_id = table.get("id", str, required=True)
        ident = _unique_id(table, raw_id, f"story-{index}", seen)
        match = table.get("match", str)
        keywords = table.strings("keywords") or ()
        if match is None and not keywords:
            table.problem("keywords", "a story without `match` needs keywords")
        split = table.get("split", bool) or False
        merge = table.strings("merge") or ()
        if split and (match is None or not keywords):
            table.problem("split", "a split needs `match` (the story to split) and `keywords`")
        if split and merge:
            table.problem("split", "a rule cannot both split and merge")
        rules.append(
            StoryRule(
                id=ident,
                match=match,
                title=table.get("title", str),
                keywords=keywords,
                exclude=table.strings("exclude") or (),
                merge=merge,
                destinations=table.strings("destinations"),
                split=split,
                known_as_of=_known_as_of(
                    data if isinstance(data, dict) else {}, f"{table.where}.", problems
                ),
            )
        )
    return tuple(rules), default


def _signing_secret(secret: str) -> bool:
    """Whether the Standard Webhooks library signs with it, as delivery will: found here,
    not as every delivery to the destination dying."""
    if not secret.startswith("whsec_"):
        return False
    from standardwebhooks import Webhook  # noqa: PLC0415 - only when a webhook is set up

    try:
        Webhook(secret)
    except Exception:  # the library raises binascii.Error, ValueError, ... for bad base64
        return False
    return True
