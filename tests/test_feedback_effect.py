"""storyeval.feedback's list of wrong alerts left after feedback: which right alerts of
the same story any rule asking more of its scores would drop with each."""

from __future__ import annotations

from storyeval.feedback import Run, _later_wrong


def test_a_later_wrong_alert_is_shadowed_by_the_right_ones_no_higher_on_both_scores() -> None:
    run = Run(
        alerts=[(0, "s", False), (1, "s", True), (2, "s", True), (3, "s", False), (4, "t", True)],
        verdicts=[(0, "s", "not-new")],
        scores={0: (0.4, 0.7), 1: (0.2, 0.8), 2: (0.19, 0.85), 3: (0.2, 0.9), 4: (0.1, 0.1)},
        kinds={0: "not-new", 3: "wrong-story"},
    )
    ids = ["a", "b", "c", "d", "e"]
    later = _later_wrong(run, ids, {"s": 0}, {"s": "not-new"}, 3, "s")
    assert (later.item_id, later.answered, later.kind) == ("d", "not-new", "wrong-story")
    # b and c score no higher than d on both; e is another story's.
    assert later.shadowed == ("b", "c")
    assert _later_wrong(run, ids, {"s": 1}, {"s": "not-new"}, 3, "s").shadowed == ("c",)
