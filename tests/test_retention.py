"""Retention: old processed items, old articles' text and delivered deliveries go; the
decisions made (alerts, developments, their sources, what stories learned) stay."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from tests.conftest import write_config
from tests.test_cli import storywatch
from tests.test_corroboration import _embedded_runtime, serve_ten_outlets
from worker import pipeline
from worker.store import schema
from worker.store.engine import transaction


def counts(runtime: pipeline.Runtime) -> dict[str, int]:
    tables = {
        "items": schema.Item,
        "bands": schema.ArticleBand,
        "deliveries": schema.Delivery,
        "alerts": schema.Alert,
        "developments": schema.Development,
        "sources": schema.DevelopmentSource,
        "facts": schema.StoryFact,
        "reports": schema.StoryReport,
    }
    with transaction(runtime.sessions) as session:
        found = {
            name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in tables.items()
        }
        found["full_texts"] = int(
            session.scalar(
                select(func.count())
                .select_from(schema.Article)
                .where(schema.Article.signature.is_not(None))
            )
            or 0
        )
    return found


def test_prune_keeps_the_decisions_and_drops_what_only_served_them(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    base = serve_ten_outlets(httpserver)
    config = write_config(tmp_path, feeds=f'[[feeds]]\nid = "wire"\nurl = "{base}/feed.xml"\n')
    runtime = _embedded_runtime(tmp_path, config)
    try:
        for item_id in pipeline.poll_feed(runtime, "wire").new_item_ids:
            result = pipeline.process_item(runtime, item_id)
            if result.alert_id:
                assert pipeline.deliver_alert(runtime, result.alert_id).delivered == 1
        before = counts(runtime)
        # The alert's delivery, and its follow-up (later outlets reported it), pending.
        assert before["items"] == 10 and before["deliveries"] == 2 and before["bands"] > 0

        # A week on, nothing is old enough.
        start = runtime.clock()
        runtime.clock = lambda: start + timedelta(days=7)
        assert pipeline.prune(runtime) == pipeline.PruneSummary()
        assert counts(runtime) == before

        # 100 days on: items go, old articles keep their lead. The alert's delivered
        # delivery stays while its follow-up is still to be sent there (the follow-up goes
        # only where the alert is recorded as delivered).
        runtime.clock = lambda: start + timedelta(days=100)
        summary = pipeline.prune(runtime)
        after = counts(runtime)
        assert pipeline.prune(runtime) == pipeline.PruneSummary()  # nothing left to do
    finally:
        runtime.close()
    assert (summary.items, summary.deliveries) == (10, 0)
    assert summary.articles_trimmed == before["full_texts"] - 1  # all but the development's
    assert (after["items"], after["deliveries"], after["full_texts"]) == (0, 2, 1)
    assert after["bands"] < before["bands"]
    for kept in ("alerts", "developments", "sources", "facts", "reports"):
        assert after[kept] == before[kept], kept


def test_a_prepared_view_no_decision_took_goes_with_its_articles_text(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A stored article's term vector waits for its decision; if none ever takes it (the
    item failed), retention deletes it with the article's text."""
    base = serve_ten_outlets(httpserver)
    config = write_config(tmp_path, feeds=f'[[feeds]]\nid = "wire"\nurl = "{base}/feed.xml"\n')
    runtime = _embedded_runtime(tmp_path, config)

    def views() -> int:
        with transaction(runtime.sessions) as session:
            return int(session.scalar(select(func.count()).select_from(schema.PreparedView)) or 0)

    try:
        item_id = pipeline.poll_feed(runtime, "wire").new_item_ids[0]
        assert isinstance(pipeline.store_item(runtime, item_id), pipeline.Stored)
        assert views() == 1
        start = runtime.clock()
        runtime.clock = lambda: start + timedelta(days=100)
        assert pipeline.prune(runtime).articles_trimmed == 1
        assert views() == 0
    finally:
        runtime.close()


def test_the_prune_command_runs_on_the_configured_database(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    base = serve_ten_outlets(httpserver)
    config = write_config(tmp_path, feeds=f'[[feeds]]\nid = "wire"\nurl = "{base}/feed.xml"\n')
    _embedded_runtime(tmp_path, config).close()
    env = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
        "STORYWATCH_KEEP_ITEMS_DAYS": "0",
        "PATH": os.environ.get("PATH", ""),
    }
    done = storywatch("prune", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "pruned 0 item(s), the text of 0 article(s), 0 delivered delivery(ies)" in done.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("prune",),
        ("feedback", "alrt_x", "not-new"),
        ("mute", "some-story"),
        ("feeds", "resume", "some-feed"),
        ("alerts", "retry", "--dead"),
    ],
)
def test_commands_on_the_data_before_init_say_so_and_create_no_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = write_config(tmp_path)
    env = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "v"),
        "PATH": os.environ.get("PATH", ""),
    }
    done = storywatch(*command, cwd=tmp_path, env=env)
    assert done.returncode == 2 and "does not exist; run `storywatch init`" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "v" / "storywatch.db").exists()
