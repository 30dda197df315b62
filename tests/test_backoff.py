"""The one backoff formula, and the table that says what a failed item run does next."""

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.conftest import HighestDraw, LowestDraw
from worker.errors import ExtractionError, PermanentFetchError, TransientFetchError, backoff_delay
from worker.pipeline.retries import MAX_COUNTDOWN_SECONDS, item_retry
from worker.settings import Settings


def test_the_window_doubles_from_the_base_up_to_the_cap() -> None:
    waits = [backoff_delay(n, base=10.0, cap=100.0, rng=HighestDraw()) for n in range(1, 6)]
    assert waits == [10.0, 20.0, 40.0, 80.0, 100.0]
    assert backoff_delay(10_000, base=10.0, cap=100.0, rng=HighestDraw()) == 100.0


def test_jitter_is_the_share_of_the_window_a_wait_may_fall_short_of_it() -> None:
    assert backoff_delay(3, base=10.0, cap=1e9, jitter=1.0, rng=LowestDraw()) == 0.0
    assert backoff_delay(3, base=10.0, cap=1e9, jitter=0.1, rng=LowestDraw()) == pytest.approx(36.0)
    assert backoff_delay(3, base=10.0, cap=1e9, jitter=0.0, rng=LowestDraw()) == 40.0
    draws = {backoff_delay(3, base=10.0, cap=1e9, jitter=0.5) for _ in range(50)}
    assert len(draws) > 1 and all(20.0 <= d <= 40.0 for d in draws)


def test_a_floor_is_a_minimum_but_the_cap_still_wins() -> None:
    assert backoff_delay(1, base=10.0, cap=100.0, floor=70.0, rng=LowestDraw()) == 70.0
    assert backoff_delay(1, base=10.0, cap=100.0, floor=1e9, rng=LowestDraw()) == 100.0


@pytest.mark.parametrize("bad", [{"failures": 0}, {"failures": 1, "jitter": 1.5}])
def test_nonsense_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        backoff_delay(**{"base": 1.0, "cap": 2.0, **bad})  # type: ignore[arg-type]


def _settings() -> Settings:
    return Settings(Path("config"), Path("var"), "sqlite://", page_retry_seconds=30.0)


def test_a_transient_page_failure_retries_after_its_hosts_wait_and_is_noted() -> None:
    error = TransientFetchError("503", url="https://example.org/a", retry_after_seconds=90.0)
    planned = item_retry(error, 1, _settings())
    assert planned is not None
    rule, delay = planned
    assert rule.event == "item.retry_page" and rule.note_on_item
    assert 90.0 <= delay <= MAX_COUNTDOWN_SECONDS
    _, later = item_retry(error, 9, _settings()) or (None, 0.0)
    assert 0.5 * MAX_COUNTDOWN_SECONDS <= later <= MAX_COUNTDOWN_SECONDS


def test_a_database_race_retries_soon_without_writing_to_the_database() -> None:
    for error in (
        OperationalError("lock", {}, Exception()),
        IntegrityError("dup", {}, Exception()),
    ):
        planned = item_retry(error, 1, _settings())
        assert planned is not None
        rule, delay = planned
        assert rule.event == "item.retry_database" and not rule.note_on_item
        assert 0.0 <= delay <= 2.0


@pytest.mark.parametrize(
    "error",
    [
        PermanentFetchError("404", url="https://example.org/a"),
        ExtractionError("no text"),
        ValueError("a bug"),
    ],
)
def test_what_a_retry_cannot_fix_is_not_retried(error: Exception) -> None:
    assert item_retry(error, 1, _settings()) is None
