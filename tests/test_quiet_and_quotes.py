"""Quiet spells, alert quotes and the cross-validated harness (issue 13, items 1, 4 and 5)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from storyeval.cv import cross_validate, folds_of
from storyeval.metrics import GoldItem
from storyeval.sets import seed_protocol
from tests.conftest import SEED_CORPUS
from worker.decide.novelty import NoveltyConfig, assess, known_from
from worker.decide.surge import ReportVolume
from worker.decide.tracker import Tracker, TrackerConfig
from worker.models import Article
from worker.stories.corpus import build_stories
from worker.stories.folder import read_corpus

DATA = Path(__file__).parent / "fixtures" / "eval"


def test_silence_counts_from_the_last_report_or_from_the_corpus_day() -> None:
    volume = ReportVolume(days=28)
    assert volume.silent_days(date(2025, 1, 20)) is None  # nothing to count from
    assert volume.silent_days(date(2025, 1, 20), since=date(2025, 1, 1)) == 19
    volume.add(date(2025, 1, 5))
    assert volume.silent_days(date(2025, 1, 20), since=date(2025, 1, 1)) == 15
    assert volume.silent_days(date(2025, 1, 5)) is None  # not the day's first report
    # Backlog reports from before the corpus day: the silence starts at the corpus day.
    assert volume.silent_days(date(2025, 1, 11), since=date(2025, 1, 10)) == 1
    volume.add(date(2025, 1, 30))
    # A late backlog report ends no silence: a later report was already counted.
    assert volume.silent_days(date(2025, 1, 15)) is None


def test_undated_reports_of_one_day_make_one_surge_alert_at_most() -> None:
    """Dated by when they were seen, like the service dates them; the day's development
    must be found by the day's later reports, so the rest are recorded on it."""
    tracker, crash = _crash_story_tracker()
    seen = datetime(2025, 6, 2, 9, tzinfo=UTC)
    alerts = 0
    for number in range(5):
        article = Article(f"r{number}", "Aktau crash", RETELLING, seen=seen)
        decision = tracker.decide(article)
        assert decision.story_id == crash
        alerts += decision.new_development
        tracker.learn(article, decision)
    assert alerts <= 1


def _crash_story_tracker(config: TrackerConfig | None = None) -> tuple[Tracker, str]:
    stories = build_stories(read_corpus(SEED_CORPUS))
    [crash] = [s for s in stories if "004_5c433f7db65221c3.txt" in s.documents]
    return Tracker(stories, config), crash.id


FINDING = (
    "The Ministry of Transport of Kazakhstan has published an interim report on the "
    "investigation into the crash of the Azerbaijan Airlines Embraer near Aktau.\n"
    "According to the report, the aircraft was damaged by striking elements of a warhead."
)
RETELLING = (
    "An Azerbaijan Airlines Embraer 190 crashed near Aktau in Kazakhstan, killing 38 of the "
    "67 people on board.\nThe plane was flying from Baku to Grozny when it was diverted."
)


def test_the_first_report_after_a_long_silence_alerts_even_in_known_words() -> None:
    tracker, crash = _crash_story_tracker()
    a_year_later = datetime(2025, 12, 26, 9, tzinfo=UTC)
    decision = tracker.decide(Article("f", None, FINDING, published=a_year_later))
    assert decision.story_id == crash and decision.new_development
    assert any(r.startswith("first report in 363 days") for r in decision.novelty.reasons)
    # Off, the same report is a rehash: nothing in it is a new name or figure.
    off, _ = _crash_story_tracker(TrackerConfig(quiet_days=0))
    assert not off.decide(Article("f", None, FINDING, published=a_year_later)).new_development


def test_a_retelling_of_the_story_after_a_long_silence_does_not_alert() -> None:
    tracker, crash = _crash_story_tracker()
    article = Article("r", None, RETELLING, published=datetime(2025, 12, 26, 9, tzinfo=UTC))
    decision = tracker.decide(article)
    assert decision.story_id == crash and not decision.new_development


def test_alert_quotes_skip_bylines_cut_datelines_and_never_repeat() -> None:
    knowledge = known_from(["Biden spoke with allies about Ukraine aid."], NoveltyConfig())
    text = (
        "KYIV, Ukraine (AP) — The Pentagon announced a new $725 million weapons package "
        "for Ukraine including HIMARS rockets and Stinger missiles.\n"
        "The Pentagon announced a new $725 million weapons package for Ukraine including "
        "HIMARS rockets and Stinger missiles.\n"
        "(Reporting by Idrees Ali; Editing by Chizu Nomiyama)\n"
        "Defense Secretary Lloyd Austin said deliveries would begin within days from Poland."
    )
    title = "Pentagon announces $725 million weapons package for Ukraine with HIMARS rockets"
    novelty = assess(knowledge, title, text, NoveltyConfig())
    assert novelty.is_new
    facts = novelty.new_facts
    assert facts[0].startswith("The Pentagon announced a new $725 million")  # no dateline
    assert len({f.lower() for f in facts}) == len(facts)
    assert sum("725 million weapons package for Ukraine including" in f for f in facts) == 1
    assert not any("Reporting by" in f or "Editing by" in f for f in facts)
    assert title not in facts  # the lead sentence already says it


def test_the_headline_is_quoted_when_it_is_the_only_new_fact() -> None:
    knowledge = known_from(
        ["The plane crashed near Aktau in Kazakhstan, killing 38 people on board."],
        NoveltyConfig(),
    )
    title = "Kazakhstan publishes final report blaming Pantsir missile for Aktau crash"
    novelty = assess(
        knowledge, title, "The plane crashed near Aktau, killing 38 people.", NoveltyConfig()
    )
    assert novelty.is_new and novelty.new_facts == (title,)


def test_folds_hold_one_story_each_and_spread_the_off_topic_items() -> None:
    gold = [
        GoldItem("1", "a", "rehash"),
        GoldItem("2", None, "off_topic"),
        GoldItem("3", "b", "new_development", ("d",)),
        GoldItem("4", None, "off_topic"),
        GoldItem("5", None, "off_topic"),
    ]
    assert folds_of(gold) == ["a", "a", "b", "b", "a"]


def test_cross_validation_reports_a_fold_per_story_with_knobs_chosen_elsewhere() -> None:
    protocol = seed_protocol(DATA / "seed-followups" / "dev.jsonl", SEED_CORPUS)
    cv = cross_validate(protocol)
    stories = {g.story for g in protocol.gold if g.story}
    assert {fold.story for fold in cv.folds} == stories
    assert cv.settings == 27
    knobs = {"match.threshold", "novelty.covered", "quiet_days"}
    assert all(set(fold.chosen) == knobs for fold in cv.folds)
    assert 0.0 <= cv.development.precision <= 1.0 and cv.development.relevant > 0
