"""Shared fixtures: real Redis and PostgreSQL, a configuration folder per test.

Tests that need a server skip with a clear reason when it does not answer, except under
STORYWATCH_TEST_REQUIRE_SERVICES=1 (set by .ci/run), where they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
SEED_CORPUS = REPO / "config" / "corpus"


class HighestDraw(random.Random):
    """A random source whose uniform draw is always the top of the range."""

    def uniform(self, a: float, b: float) -> float:
        return b


class LowestDraw(random.Random):
    """A random source whose uniform draw is always the bottom of the range."""

    def uniform(self, a: float, b: float) -> float:
        return a


def load_script(path: Path) -> ModuleType:
    """A benchmark script imported as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


REDIS_URL = os.environ.get("STORYWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
POSTGRES_URL = os.environ.get(
    "STORYWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); start it as README describes"
    if os.environ.get("STORYWATCH_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database emptied before and after the test."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped after the test."""
    admin_url = make_url(POSTGRES_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    name = f"storywatch_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


def write_config(
    root: Path,
    *,
    feeds: str = "",
    destinations: str = "",
    stories: str = "",
    corpus: Path = SEED_CORPUS,
) -> Path:
    """A config folder (feeds.toml, destinations.toml, stories.toml, corpus/) under root."""
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "feeds.toml").write_text(feeds, encoding="utf-8")
    (config / "destinations.toml").write_text(destinations, encoding="utf-8")
    (config / "stories.toml").write_text(stories, encoding="utf-8")
    shutil.copytree(corpus, config / "corpus", dirs_exist_ok=True)
    return config
