"""Metrics of DESIGN §5 on small hand-made streams."""
# ruff: noqa: E501  (fixture sentences are quoted whole, as news text reads)

from storyeval.metrics import GoldItem, SystemItem, development_scores, map_stories, tracking_scores

GOLD = [
    GoldItem("1", "crash", "new_development", ("d1",)),
    GoldItem("2", "crash", "new_development", ("d1",)),
    GoldItem("3", "crash", "rehash"),
    GoldItem("4", "aid", "new_development", ("d2",)),
    GoldItem("5", None, "off_topic"),
]


def test_system_ids_map_to_gold_by_majority():
    system = [
        SystemItem("1", "s1", True),
        SystemItem("2", "s1", True),
        SystemItem("3", "s2", False),
        SystemItem("4", "s1", False),
        SystemItem("5", "s3", False),
    ]
    assert map_stories(system, GOLD) == {"s1": "crash", "s2": "crash", "s3": None}


def test_tracking_precision_over_assigned_recall_over_on_topic():
    system = [
        SystemItem("1", "s1", False),
        SystemItem("2", "s1", False),
        SystemItem("3", None, False),
        SystemItem("4", "s1", False),
        SystemItem("5", "s3", False),
    ]
    scores = tracking_scores(system, GOLD)
    # s1 -> crash: items 1, 2 right, 4 wrong; s3 -> None: item 5 wrong. 2 right of 4 assigned, of 4 on-topic.
    assert (scores.correct, scores.predicted, scores.relevant) == (2, 4, 4)
    assert scores.precision == 0.5 and scores.recall == 0.5


def test_second_alert_on_a_credited_development_is_wrong():
    system = [
        SystemItem("1", "s1", True),
        SystemItem("2", "s1", True),
        SystemItem("3", "s1", True),
        SystemItem("4", "s2", True),
        SystemItem("5", None, False),
    ]
    scores = development_scores(system, GOLD)
    # Right: 1 (d1) and 4 (d2); wrong: 2 (d1 again), 3 (rehash).
    assert (scores.correct, scores.predicted) == (2, 4)
    assert scores.precision == 0.5 and scores.recall == 1.0


def test_alert_on_wrong_story_earns_nothing():
    system = [
        SystemItem("1", "s1", False),
        SystemItem("2", "s1", False),
        SystemItem("4", "s1", True),
    ]
    scores = development_scores(system, GOLD)
    assert scores.correct == 0 and scores.recall == 0.0
