"""The beat's tick keeps PostgreSQL's statistics of the hot tables current
(worker.store.statistics): without them the near-copy lookup scans every band row."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from tests.conftest import write_config
from worker import pipeline
from worker.settings import load_settings
from worker.store import articles, statistics
from worker.store.engine import transaction

BANDS_PER_ARTICLE = 42  # as worker.articles.dedupe makes them


def _fill(runtime: pipeline.Runtime, count: int) -> list[str]:
    """`count` articles with random bands, as the pipeline stores them; the bands of the
    last one."""
    rng = random.Random(7)
    bands: list[str] = []
    with transaction(runtime.sessions) as session:
        for number in range(count):
            row = articles.add(
                session,
                canonical_url=f"https://news.example/{number}",
                text="text",
                content_hash=f"{number:032x}",
                extraction="page",
            )
            bands = [f"{k}:{rng.getrandbits(64):016x}" for k in range(BANDS_PER_ARTICLE)]
            articles.add_bands(session, row.id, bands)
    return bands


def _plan(runtime: pipeline.Runtime, bands: list[str]) -> str:
    query = articles.copy_candidates_query(["https://news.example/new"], "f" * 64, bands).compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    with transaction(runtime.sessions) as session:
        return "\n".join(str(row[0]) for row in session.execute(text(f"explain {query}")))


@pytest.mark.postgres
def test_the_tick_analyzes_a_grown_band_table_so_the_lookup_takes_the_index(
    tmp_path: Path, postgres_url: str
) -> None:
    environ = {
        "STORYWATCH_CONFIG_DIR": str(write_config(tmp_path)),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
        "STORYWATCH_DATABASE_URL": postgres_url,
    }
    runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
    try:
        with runtime.engine.connect() as connection:
            # As on a server with autovacuum off, or before its first round: only the
            # service's own tick analyzes the tables.
            connection.execute(text("alter table article_bands set (autovacuum_enabled = off)"))
            connection.execute(text("alter table articles set (autovacuum_enabled = off)"))
            connection.commit()
        bands = _fill(runtime, 600)
        # A backend reports its row counts when it ends (or idles a second): closing the
        # pool's connections sends them to pg_stat_user_tables, soon after.
        runtime.engine.dispose()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with transaction(runtime.sessions) as session:
                if "article_bands" in statistics.stale_tables(session):
                    break
            time.sleep(0.2)
        assert "Seq Scan on article_bands" in _plan(runtime, bands)

        analyzed = pipeline.keep_statistics(runtime)

        assert "article_bands" in analyzed and "articles" in analyzed
        plan = _plan(runtime, bands)
        assert "Seq Scan on article_bands" not in plan and "article_bands_pkey" in plan
        with transaction(runtime.sessions) as session:
            assert statistics.stale_tables(session) == []
        assert pipeline.keep_statistics(runtime) == []  # nothing changed since
    finally:
        runtime.close()


def test_sqlite_needs_no_analyze(tmp_path: Path) -> None:
    environ = {
        "STORYWATCH_CONFIG_DIR": str(write_config(tmp_path)),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
    }
    runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
    try:
        _fill(runtime, 100)
        assert pipeline.keep_statistics(runtime) == []
    finally:
        runtime.close()
