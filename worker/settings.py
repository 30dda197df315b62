"""Runtime settings from the environment and domain configuration from TOML, validated once.

Environment (`STORYWATCH_*`, a `.env` file in the working directory, `*_FILE` for secrets)
holds how to run; `config/` (feeds.toml, stories.toml, destinations.toml, corpus/) holds
what to watch. Secrets never live in `config/`: destinations name the environment variable
that holds their URL or signing secret. Every problem is collected and reported at once,
with file and key, so an operator fixes a configuration in one pass. The files of
`config/` are read by `worker.config_files`; this module reads the environment.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotenv import load_dotenv

from worker.config_files import load_destinations, load_feeds, load_story_rules, read_secret
from worker.errors import ConfigError
from worker.models import DestinationConfig, FeedConfig, StoryRule

if TYPE_CHECKING:
    from worker.fetch.net import FetchPolicy

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
HOUR = 3_600.0
MIN_WEB_TOKEN_CHARS = 16
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Settings:
    config_dir: Path
    data_dir: Path
    database_url: str
    redis_url: str | None = field(default=None, repr=False)
    allow_private_networks: bool = False
    # Sentence embeddings as a second opinion on matching (worker.decide.semantic).
    embeddings: bool = False
    # Learned sentences a story compares articles with (worker.decide.tracker); the
    # deciding process's memory grows with them up to this bound.
    max_known_sentences: int = 20_000
    log_level: str = "INFO"
    log_format: str = "auto"  # auto | console | json
    tick_seconds: float = 15.0  # how often beat looks for due feeds and stalled work
    fetch_timeout_seconds: float = 20.0
    max_response_bytes: int = 5_000_000
    page_retry_seconds: float = 30.0  # first retry of a page that failed transiently
    delivery_retry_seconds: float = 30.0  # base of the delivery backoff
    delivery_timeout_seconds: float = 10.0  # per delivery request to a destination
    db_lock_timeout_seconds: float = 10.0  # a wait for a database lock, then a retry
    # Retention (worker.pipeline.retention), in days; 0 keeps forever.
    keep_items_days: float = 30.0
    keep_article_text_days: float = 30.0
    keep_deliveries_days: float = 90.0
    # The story desk (worker.web): writes need the token (none set: writes are refused);
    # reads are served to loopback clients only unless web_public_reads.
    web_token: str | None = field(default=None, repr=False)
    web_public_reads: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    feeds: tuple[FeedConfig, ...] = ()
    destinations: tuple[DestinationConfig, ...] = ()
    story_rules: tuple[StoryRule, ...] = ()
    known_as_of: datetime | None = None  # stories.toml's top level (see Story.known_as_of)

    @property
    def corpus_dir(self) -> Path:
        return self.config_dir / "corpus"

    @property
    def broker_url(self) -> str:
        """Redis when configured; otherwise kombu's SQLAlchemy transport on a local file."""
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    @property
    def distributed(self) -> bool:
        return self.redis_url is not None

    def fetch_policy(self) -> FetchPolicy:
        """The limits of every feed and page fetch (the service's and `check`'s)."""
        from worker.fetch.net import FetchPolicy  # noqa: PLC0415 - httpx only when fetching

        return FetchPolicy(
            allow_private_networks=self.allow_private_networks,
            read_timeout=self.fetch_timeout_seconds,
            deadline_seconds=self.fetch_timeout_seconds * 1.5,
            max_bytes=self.max_response_bytes,
        )


def load_settings(
    environ: Mapping[str, str] | None = None, *, dotenv: bool = True, service: bool = True
) -> Settings:
    """Read the environment and `config/`; raise ConfigError listing every problem.

    `service=False` is for commands that neither send alerts nor write the data directory
    (`stories`, `replay`, `check`, `status`): a destination's secret may be unset then, and
    the data directory is not checked.
    """
    if environ is None:
        if dotenv:
            _load_dotenv()
        environ = os.environ
    problems: list[str] = []
    env = _EnvReader(environ, problems)

    config_dir = Path(env.text("STORYWATCH_CONFIG_DIR", "config"))
    data_dir = Path(env.text("STORYWATCH_DATA_DIR", "var"))
    default_db = f"sqlite:///{(data_dir / 'storywatch.db').resolve()}"
    settings_kwargs: dict[str, Any] = {
        "config_dir": config_dir,
        "data_dir": data_dir,
        "database_url": env.secret("STORYWATCH_DATABASE_URL") or default_db,
        "redis_url": env.secret("STORYWATCH_REDIS_URL") or None,
        "allow_private_networks": env.flag("STORYWATCH_ALLOW_PRIVATE_NETWORKS", default=False),
        "embeddings": env.flag("STORYWATCH_EMBEDDINGS", default=False),
        "max_known_sentences": env.whole(
            "STORYWATCH_MAX_KNOWN_SENTENCES", 20_000, minimum=1_000, maximum=1_000_000
        ),
        "log_level": env.choice(
            "STORYWATCH_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True
        ),
        "log_format": env.choice("STORYWATCH_LOG_FORMAT", "auto", ("auto", "console", "json")),
        "tick_seconds": env.number("STORYWATCH_TICK_SECONDS", 15.0, minimum=0.5, maximum=HOUR),
        "fetch_timeout_seconds": env.number(
            "STORYWATCH_FETCH_TIMEOUT_SECONDS", 20.0, minimum=1, maximum=600
        ),
        "page_retry_seconds": env.number(
            "STORYWATCH_PAGE_RETRY_SECONDS", 30.0, minimum=0.1, maximum=DAY
        ),
        "delivery_retry_seconds": env.number(
            "STORYWATCH_DELIVERY_RETRY_SECONDS", 30.0, minimum=0.1, maximum=DAY
        ),
        "delivery_timeout_seconds": env.number(
            "STORYWATCH_DELIVERY_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=600
        ),
        "db_lock_timeout_seconds": env.number(
            "STORYWATCH_DB_LOCK_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=600
        ),
        "web_token": env.secret("STORYWATCH_WEB_TOKEN") or None,
        "web_public_reads": env.flag("STORYWATCH_WEB_PUBLIC_READS", default=False),
        "web_host": env.text("STORYWATCH_WEB_HOST", "127.0.0.1"),
        "web_port": env.whole("STORYWATCH_WEB_PORT", 8080, minimum=0, maximum=65535),
        "keep_items_days": env.number("STORYWATCH_KEEP_ITEMS_DAYS", 30.0, minimum=0, maximum=36500),
        "keep_article_text_days": env.number(
            "STORYWATCH_KEEP_ARTICLE_TEXT_DAYS", 30.0, minimum=0, maximum=36500
        ),
        "keep_deliveries_days": env.number(
            "STORYWATCH_KEEP_DELIVERIES_DAYS", 90.0, minimum=0, maximum=36500
        ),
        "max_response_bytes": _max_response_bytes(env),
    }
    _check_urls(settings_kwargs["database_url"], settings_kwargs["redis_url"], problems)
    if service:
        _check_data_dir(data_dir, problems)
    token = settings_kwargs["web_token"]
    if token is not None and len(token) < MIN_WEB_TOKEN_CHARS:
        # A short token is guessable over the network the desk may be exposed to.
        problems.append(
            f"STORYWATCH_WEB_TOKEN: use at least {MIN_WEB_TOKEN_CHARS} characters "
            f"(it has {len(token)}); for example: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    if not config_dir.is_dir():
        problems.append(f"STORYWATCH_CONFIG_DIR: {config_dir} is not a directory")
    else:
        settings_kwargs["feeds"] = load_feeds(config_dir / "feeds.toml", problems)
        settings_kwargs["destinations"] = load_destinations(
            config_dir / "destinations.toml", environ, data_dir, problems, secrets=service
        )
        rules, known_as_of = load_story_rules(config_dir / "stories.toml", problems)
        known = {d.id for d in settings_kwargs["destinations"]} | {"console"}
        for index, rule in enumerate(rules):
            for dest in rule.destinations or ():
                if dest not in known:
                    problems.append(
                        f"stories.toml: stories[{index}].destinations: unknown destination {dest!r}"
                    )
        settings_kwargs["story_rules"] = rules
        settings_kwargs["known_as_of"] = known_as_of
        corpus = config_dir / "corpus"
        if not corpus.is_dir() or not (any(corpus.glob("*.txt")) or any(corpus.glob("*/*.txt"))):
            problems.append(
                f"{corpus}: the corpus folder must hold at least one .txt document"
                " (loose, or in a story folder corpus/<story>/)"
            )
    if problems:
        raise ConfigError(problems)
    return Settings(**settings_kwargs)


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _check_urls(database_url: str, redis_url: str | None, problems: list[str]) -> None:
    """The database and Redis URLs name something storywatch can open: said here, not as
    a traceback from the first connection. The URLs are secrets: only their schemes are
    quoted."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - most commands never need it
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError  # noqa: PLC0415

    try:
        url = make_url(database_url)
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            problems.append(
                f"STORYWATCH_DATABASE_URL: storywatch stores in SQLite (sqlite:///PATH) or "
                f"PostgreSQL (postgresql+psycopg://...), not {url.drivername!r}"
            )
        else:
            url.get_dialect().import_dbapi()  # the driver is installed
    except ArgumentError:
        problems.append(
            "STORYWATCH_DATABASE_URL: not a database URL (sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB)"
        )
    except (NoSuchModuleError, ImportError) as exc:
        problems.append(
            f"STORYWATCH_DATABASE_URL: its driver is not available ({exc}); PostgreSQL "
            "is reached with postgresql+psycopg://"
        )
    if redis_url is not None:
        scheme = redis_url.split("://", 1)[0].lower() if "://" in redis_url else ""
        if scheme not in _REDIS_SCHEMES:
            problems.append(
                "STORYWATCH_REDIS_URL: expected redis://, rediss:// or unix://, got "
                + (f"{scheme}://" if scheme else "no scheme")
            )


def _check_data_dir(data_dir: Path, problems: list[str]) -> None:
    """The data directory exists (or can be made) and takes a file: the database, the
    embedded broker and the JSONL alerts live there, and finding out at the first write
    would be a traceback in a task instead of a line here."""
    where = f"STORYWATCH_DATA_DIR: {data_dir}"
    if data_dir.exists() and not data_dir.is_dir():
        problems.append(f"{where} is not a directory")
        return
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        problems.append(f"{where} is not writable: {exc.strerror or exc}")


# ---------------------------------------------------------------------------------------
# Environment


def _load_dotenv() -> None:
    load_dotenv(Path.cwd() / ".env", override=False)


def max_response_bytes(environ: Mapping[str, str] | None = None) -> int:
    """STORYWATCH_MAX_RESPONSE_BYTES alone, for what needs no `config/` (`storywatch check
    FILE --corpus DIR`); raises ConfigError as `load_settings` would."""
    if environ is None:
        _load_dotenv()
        environ = os.environ
    problems: list[str] = []
    limit = _max_response_bytes(_EnvReader(environ, problems))
    if problems:
        raise ConfigError(problems)
    return limit


def _max_response_bytes(env: _EnvReader) -> int:
    return env.whole(
        "STORYWATCH_MAX_RESPONSE_BYTES", 5_000_000, minimum=10_000, maximum=500_000_000
    )


class _EnvReader:
    """Reads typed values from an environment, appending problems instead of raising."""

    def __init__(self, environ: Mapping[str, str], problems: list[str]) -> None:
        self._env = environ
        self._problems = problems

    def text(self, name: str, default: str) -> str:
        return self._env.get(name, "").strip() or default

    def secret(self, name: str) -> str | None:
        return read_secret(self._env, name, self._problems)

    def flag(self, name: str, *, default: bool) -> bool:
        raw = self._env.get(name)
        if raw is None:
            return default
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        self._problems.append(f"{name}: expected true or false, got {raw!r}")
        return default

    def choice(
        self, name: str, default: str, allowed: tuple[str, ...], *, upper: bool = False
    ) -> str:
        raw = self._env.get(name, "").strip() or default
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            self._problems.append(f"{name}: expected one of {', '.join(allowed)}, got {raw!r}")
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            # float() also reads "1_0" and other scripts' digits: not how a number is
            # written in a setting, so more likely a typo than a value.
            if not raw.isascii() or "_" in raw:
                raise ValueError(raw)
            value = float(raw)
        except ValueError:
            self._problems.append(f"{name}: expected a number, got {raw!r}")
            return default
        # nan passes every comparison as False: without isfinite a tick of nan would be
        # accepted and the scheduler would never fire.
        if not math.isfinite(value) or not minimum <= value <= maximum:
            self._problems.append(
                f"{name}: expected a number from {_plain(minimum)} to {_plain(maximum)}, "
                f"got {raw!r}"
            )
            return default
        return value

    def whole(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        """A whole number in range: 80.5 for a port is a mistake to report, not to round."""
        value = self.number(name, default, minimum=minimum, maximum=maximum)
        if not float(value).is_integer():
            self._problems.append(f"{name}: expected a whole number, got {value:g}")
            return default
        return int(value)


def embeddings_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """STORYWATCH_EMBEDDINGS alone, for the offline commands that need no other setting;
    a value that is not a boolean is a ConfigError, as at start."""
    problems: list[str] = []
    if environ is None:
        _load_dotenv()  # as load_settings does: a .env may hold it
    value = _EnvReader(dict(os.environ if environ is None else environ), problems).flag(
        "STORYWATCH_EMBEDDINGS", default=False
    )
    if problems:
        raise ConfigError(problems)
    return value


def _plain(bound: float) -> str:
    """A bound as people write it: 500000000, not 5e+08; 0.1 stays 0.1."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"
