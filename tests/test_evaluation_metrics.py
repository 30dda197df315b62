"""Metrics of issue 3's harness on hand-made examples: dates, nuggets, mappings."""

from datetime import date

import pytest

from storyeval.metrics import (
    Emission,
    GoldItem,
    Scores,
    SystemItem,
    date_scores,
    macro_average,
    map_stories,
    median_or_none,
    nugget_scores,
    resolve_duplicates,
    tracking_scores,
)

D = date.fromisoformat


def test_alert_dates_are_scored_as_exact_days():
    alerts = {D("2010-04-20"), D("2010-04-21"), D("2010-05-01")}
    timeline = {D("2010-04-20"), D("2010-04-21"), D("2010-04-22"), D("2010-06-01")}
    scores = date_scores(alerts, timeline)
    # The day after a timeline date is not the timeline date: 2 of 3 alert days are right.
    assert (scores.correct, scores.predicted, scores.relevant) == (2, 3, 4)
    assert scores.precision == pytest.approx(0.6667) and scores.recall == 0.5
    assert scores.f1 == pytest.approx(0.5714, abs=1e-4)


def test_a_story_without_alerts_scores_zero_not_an_error():
    assert date_scores(set(), {D("2010-04-20")}) == Scores(0.0, 0.0, 0.0, 0, 0, 1)


def test_macro_average_weighs_each_story_equally():
    big = date_scores({D("2010-01-01"), D("2010-01-02")}, {D("2010-01-01"), D("2010-01-02")})
    empty = date_scores(set(), {D("2011-01-01")})
    macro = macro_average([big, empty])
    assert (macro.precision, macro.recall, macro.f1, macro.units) == (0.5, 0.5, 0.5, 2)
    assert macro_average([]).units == 0


def test_every_copy_of_a_duplicate_shares_the_judged_nuggets():
    matches = {"u1": {"n1"}, "u9": {"n9"}}
    # u2 copies u1; u3 copies u2 (a chain); u8 was judged as the copy of unjudged u7.
    duplicates = {"u2": "u1", "u3": "u2", "u8": "u7", "u9": "u7"}
    resolved = resolve_duplicates(matches, duplicates)
    assert resolved["u2"] == resolved["u3"] == resolved["u1"] == frozenset({"n1"})
    assert resolved["u7"] == resolved["u8"] == frozenset({"n9"})
    assert "u4" not in resolved


def test_nugget_precision_counts_only_first_finds_and_duplicates_are_repeats():
    update_nuggets = resolve_duplicates(
        {"u1": {"n1"}, "u2": {"n2", "n3"}, "u5": {"n5"}}, {"u1-copy": "u1"}
    )
    first_pooled = {"n1": 0.0, "n2": 3600.0, "n3": 3600.0, "n4": 0.0}  # n5: not pooled
    emitted = [
        Emission("u1-copy", 7200.0),  # right: n1, 2 h after it was first pooled
        Emission("u1", 9000.0),  # the same text again: n1 already found
        Emission("u2", 3600.0),  # right: n2 and n3, at once
        Emission(None, 3600.0),  # a sentence not traced to any pooled update
        Emission("u5", 3600.0),  # its nugget has no pooled match: not in the pool's gold
    ]
    scores = nugget_scores(emitted, update_nuggets, first_pooled)
    assert (scores.right, scores.emitted, scores.found, scores.nuggets) == (2, 5, 3, 4)
    assert scores.precision == 0.4 and scores.recall == 0.75
    assert scores.latencies_hours == (2.0, 0.0, 0.0)
    assert median_or_none(scores.latencies_hours) == 0.0
    assert median_or_none([]) is None


def test_nothing_emitted_scores_zero():
    scores = nugget_scores([], {"u1": frozenset({"n1"})}, {"n1": 0.0})
    assert (scores.precision, scores.recall, scores.f1) == (0.0, 0.0, 0.0)


def test_majority_mapping_breaks_ties_towards_on_topic_then_alphabetically():
    gold = [
        GoldItem("1", "crash", "new_development"),
        GoldItem("2", None, "off_topic"),
        GoldItem("3", "aid", "new_development"),
        GoldItem("4", "crash", "rehash"),
    ]
    system = [
        SystemItem("1", "s1", False),
        SystemItem("2", "s1", False),
        SystemItem("3", "s2", False),
        SystemItem("4", "s2", False),
    ]
    assert map_stories(system, gold) == {"s1": "crash", "s2": "aid"}


def test_identity_mapping_does_not_rename_a_story_that_drifted():
    gold = [GoldItem("1", "a", "x"), GoldItem("2", "b", "x"), GoldItem("3", "b", "x")]
    system = [SystemItem("1", "b", False), SystemItem("2", "b", False), SystemItem("3", "b", False)]
    by_majority = tracking_scores(system, gold)
    by_identity = tracking_scores(system, gold, {"a": "a", "b": "b"})
    assert by_majority.correct == 2 and by_identity.correct == 2
    drifted = [
        SystemItem("1", "a", False),
        SystemItem("2", "a", False),
        SystemItem("3", "a", False),
    ]
    # Majority vote would rename story "a" to gold "b" and credit two items.
    assert tracking_scores(drifted, gold).correct == 2
    assert tracking_scores(drifted, gold, {"a": "a", "b": "b"}).correct == 1
