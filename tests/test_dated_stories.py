"""Dated corpora and story folders (issue 13, items 2 and 3).

A document's `Date:` first line dates it; a story is known as of its documents' latest
day; `corpus/<story>/` folders are stories as the user grouped them; an undated corpus is
known as of the moment the service loaded it; an undated report is dated by when it was
seen. Real files in tmp folders and a real SQLite database, no mocks.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import write_config
from worker import pipeline
from worker.decide.replay import replay
from worker.decide.tracker import Tracker
from worker.errors import ConfigError
from worker.models import Article
from worker.settings import load_settings
from worker.stories.corpus import build_stories
from worker.stories.documents import corpus_document
from worker.stories.folder import read_corpus

CRASH = (
    "An Azerbaijan Airlines Embraer 190 crashed near Aktau in Kazakhstan, killing 38 people.\n"
    "The plane was flying from Baku to Grozny when it was diverted across the Caspian Sea.\n"
    "Investigators from Kazakhstan and Azerbaijan are examining the wreckage near Aktau.\n"
)
SUMMIT = (
    "The COP29 climate summit in Baku agreed a climate finance goal of 300 billion dollars.\n"
    "Developing nations at COP29 called the Baku finance deal far too small.\n"
    "UN Secretary-General Guterres said the COP29 agreement in Baku was a base to build on.\n"
)


def test_a_date_line_dates_the_document_and_is_not_part_of_its_text() -> None:
    document = corpus_document("a.txt", "\ufeff\n  Date: 2024-12-28 \n\nThe plane crashed.")
    assert document.saved == date(2024, 12, 28)
    assert "Date" not in document.text and "The plane crashed." in document.text
    assert corpus_document("b.txt", "The plane crashed.\nDate: 2024-12-28").saved is None


def test_a_date_line_that_is_not_a_day_is_an_error_naming_the_file() -> None:
    with pytest.raises(ValueError, match=r"b\.txt: first line 'Date: yesterday'"):
        corpus_document("b.txt", "Date: yesterday\n\nThe plane crashed.")


def test_a_story_is_known_as_of_its_documents_latest_day(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(f"Date: 2024-12-26\n\n{CRASH}", encoding="utf-8")
    (tmp_path / "b.txt").write_text(f"Date: 2024-12-28\n\n{CRASH}", encoding="utf-8")
    [story] = build_stories(read_corpus(tmp_path))
    assert story.known_as_of == datetime(2024, 12, 28, 23, 59, 59, 999999, tzinfo=UTC)
    # stories.toml's top-level date beats what the files say.
    [edited] = build_stories(read_corpus(tmp_path), known_as_of=datetime(2025, 1, 1, tzinfo=UTC))
    assert edited.known_as_of == datetime(2025, 1, 1, tzinfo=UTC)


def test_story_folders_are_stories_named_by_their_folder_and_loose_files_are_grouped(
    tmp_path: Path,
) -> None:
    (tmp_path / "azal-crash").mkdir()
    (tmp_path / "azal-crash" / "one.txt").write_text(f"Date: 2024-12-27\n\n{CRASH}", "utf-8")
    (tmp_path / "azal-crash" / "two.txt").write_text(CRASH.replace("38", "thirty-eight"), "utf-8")
    (tmp_path / "summit.txt").write_text(SUMMIT, encoding="utf-8")
    stories = build_stories(read_corpus(tmp_path))
    by_id = {story.id: story for story in stories}
    assert "azal-crash" in by_id and len(stories) == 2
    crash = by_id["azal-crash"]
    assert crash.documents == ("azal-crash/one.txt", "azal-crash/two.txt")
    assert crash.known_as_of == datetime(2024, 12, 27, 23, 59, 59, 999999, tzinfo=UTC)
    [summit] = [s for s in stories if s.id != "azal-crash"]
    assert summit.documents == ("summit.txt",) and summit.known_as_of is None
    assert not any("COP29" in fact for fact in crash.facts)


def test_bad_folder_names_and_dates_are_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "Bad Name").mkdir()
    (tmp_path / "Bad Name" / "x.txt").write_text(CRASH, encoding="utf-8")
    (tmp_path / "a.txt").write_text("Date: 28/12/2024\n\n" + CRASH, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_corpus(tmp_path)
    problems = "\n".join(caught.value.problems)
    assert "Bad Name: a story folder's name is the story's id" in problems
    assert "a.txt: first line 'Date: 28/12/2024'" in problems


def test_a_replayed_report_published_by_the_corpus_day_is_learned_not_alerted(
    tmp_path: Path,
) -> None:
    """And an undated report is dated by the latest date seen before it in the stream."""
    (tmp_path / "crash").mkdir()
    (tmp_path / "crash" / "a.txt").write_text(f"Date: 2024-12-28\n\n{CRASH}", encoding="utf-8")
    [story] = build_stories(read_corpus(tmp_path))
    news = (
        "Kazakhstan's transport ministry published its final report on the Embraer crash near"
        " Aktau, finding that 147 fragments of a Pantsir missile warhead hit the aircraft."
    )
    on_the_day = Article(
        "a",
        "Final report on the Aktau crash",
        news,
        published=datetime(2024, 12, 28, 20, tzinfo=UTC),
    )
    later = dataclasses.replace(on_the_day, id="c", published=datetime(2025, 3, 1, tzinfo=UTC))
    assert Tracker([story]).decide(later).new_development  # the same report, later, is news
    rows = list(replay(Tracker([story]), [on_the_day]))
    assert rows[0]["story"] == "crash" and not rows[0]["new_development"]
    # Undated, after a known report of that day: seen that day, so known too.
    rehash = Article("r", "Aktau crash", CRASH, published=datetime(2024, 12, 28, 9, tzinfo=UTC))
    undated = dataclasses.replace(on_the_day, id="u", published=None)
    rows = list(replay(Tracker([story]), [rehash, undated]))
    assert [r["story"] for r in rows] == ["crash", "crash"]
    assert not rows[1]["new_development"]
    # Alone, nothing dates it: it may alert.
    assert next(replay(Tracker([story]), [undated]))["new_development"]


def test_the_service_dates_an_undated_corpus_when_it_first_loads_it(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus-src"
    corpus.mkdir()
    (corpus / "a.txt").write_text(CRASH, encoding="utf-8")
    config = write_config(tmp_path, corpus=corpus)
    settings = load_settings(
        {"STORYWATCH_CONFIG_DIR": str(config), "STORYWATCH_DATA_DIR": str(tmp_path / "var")},
        dotenv=False,
    )
    loaded = datetime(2026, 1, 5, 12, tzinfo=UTC)
    runtime = pipeline.open_runtime(settings)
    runtime.clock = lambda: loaded
    try:
        [story] = pipeline.initialise(runtime)
        assert story.known_as_of == loaded
        runtime.clock = lambda: loaded + timedelta(days=3)  # a restart keeps the first date
        pipeline.initialise(runtime)
        with runtime.sessions() as session:
            [stored] = runtime.trackers.current(session).story_ids
            kept = runtime.trackers.current(session).story(stored).known_as_of
        assert kept is not None and kept.replace(tzinfo=UTC) == loaded
    finally:
        runtime.close()
