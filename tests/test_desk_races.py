"""Verdicts given at the same moment, on PostgreSQL (where transactions run side by side):
each is applied or refused cleanly, never a unique-key failure."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.desk_data import fill
from worker.pipeline import desk as use
from worker.store import desk as desk_store
from worker.store.engine import transaction


def test_two_stories_given_one_unmatched_article_at_once_one_wins(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = HTTPServer(host="127.0.0.1", port=0)
    site.start()
    filled = fill(tmp_path, site, database_url=postgres_url)
    try:
        runtime = filled.runtime
        with transaction(runtime.sessions) as session:
            article = desk_store.unmatched(session, limit=1)[0].article_id
            first, second = (story for story, _ in desk_store.story_titles(session)[:2])
        # Each request waits here for the other, as two requests checked at the same
        # moment would; a request kept out by the other's lock is let through alone.
        together = threading.Barrier(2, timeout=3)
        checked = desk_store.is_unmatched

        def is_unmatched(session: object, article_id: int) -> bool:
            with contextlib.suppress(threading.BrokenBarrierError):
                together.wait()
            return checked(session, article_id)  # type: ignore[arg-type]

        monkeypatch.setattr(desk_store, "is_unmatched", is_unmatched)
        results: list[object] = []

        def give(story: str) -> None:
            try:
                results.append(
                    use.give_verdict(
                        runtime, verdict="development", article_id=article, story_id=story
                    )
                )
            except Exception as exc:  # a unique-key failure is what must not happen
                results.append(exc)

        threads = [threading.Thread(target=give, args=(story,)) for story in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        filled.runtime.close()
        site.stop()
    recorded = [r for r in results if isinstance(r, use.Recorded)]
    refused = [r for r in results if isinstance(r, use.Refused)]
    assert len(recorded) == 1 and recorded[0].alert_id, results
    assert len(refused) == 1 and "neither a report" in refused[0].reason, results
