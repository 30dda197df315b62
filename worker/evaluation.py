"""Evaluation metrics of DESIGN §5 over a labelled stream (pure functions, tested).

What this module is for: scoring a replay's output against gold labels: tracking
precision/recall/F1 (system story ids mapped to gold ids by majority vote) and
development precision/recall/F1 (an alert is right when its item is a gold new
development of the right story carrying a development no earlier alert got).

What it must not do: read files or run the system; the benchmark scripts do that.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GoldItem:
    id: str
    story: str | None  # None: off-topic
    label: str  # new_development | rehash | off_topic
    developments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SystemItem:
    id: str
    story: str | None
    new_development: bool


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float
    correct: int
    predicted: int
    relevant: int


def _scores(correct: int, predicted: int, relevant: int) -> Scores:
    precision = correct / predicted if predicted else 0.0
    recall = correct / relevant if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(round(precision, 4), round(recall, 4), round(f1, 4), correct, predicted, relevant)


def _paired(
    system: Sequence[SystemItem], gold: Sequence[GoldItem]
) -> list[tuple[SystemItem, GoldItem]]:
    by_id = {item.id: item for item in gold}
    missing = [item.id for item in system if item.id not in by_id]
    if missing:
        raise ValueError(f"system items without gold labels: {missing[:5]}")
    return [(item, by_id[item.id]) for item in system]


def map_stories(system: Sequence[SystemItem], gold: Sequence[GoldItem]) -> dict[str, str | None]:
    """Each system story id -> the gold story most of its items belong to (None: off-topic).

    Ties go to an on-topic gold story, then to the alphabetically first, so the mapping
    is deterministic.
    """
    votes: dict[str, Counter[str | None]] = defaultdict(Counter)
    for sys_item, gold_item in _paired(system, gold):
        if sys_item.story is not None:
            votes[sys_item.story][gold_item.story] += 1
    mapping: dict[str, str | None] = {}
    for story, counter in votes.items():
        mapping[story] = min(counter, key=lambda g: (-counter[g], g is None, g or ""))
    return mapping


def tracking_scores(system: Sequence[SystemItem], gold: Sequence[GoldItem]) -> Scores:
    """Precision over assigned items, recall over gold on-topic items."""
    mapping = map_stories(system, gold)
    pairs = _paired(system, gold)
    predicted = sum(1 for s, _ in pairs if s.story is not None)
    correct = sum(
        1
        for s, g in pairs
        if s.story is not None and g.story is not None and mapping[s.story] == g.story
    )
    relevant = sum(1 for g in gold if g.story is not None)
    return _scores(correct, predicted, relevant)


def development_scores(
    system: Sequence[SystemItem],
    gold: Sequence[GoldItem],
    mapping: Mapping[str, str | None] | None = None,
) -> Scores:
    """Alerts in stream order: right when they bring a gold development not yet credited.

    `correct` counts right alerts, `predicted` all alerts; recall is the share of gold
    development ids credited to a right alert (so `Scores.correct` is not its numerator).
    """
    mapping = map_stories(system, gold) if mapping is None else mapping
    credited: set[str] = set()
    right = 0
    alerts = 0
    for s, g in _paired(system, gold):
        if not (s.new_development and s.story is not None):
            continue
        alerts += 1
        fresh = set(g.developments) - credited
        if (
            g.label == "new_development"
            and g.story is not None
            and mapping.get(s.story) == g.story
            and fresh
        ):
            right += 1
            credited |= fresh
    all_developments = {d for g in gold for d in g.developments}
    precision = right / alerts if alerts else 0.0
    recall = len(credited) / len(all_developments) if all_developments else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(
        round(precision, 4), round(recall, 4), round(f1, 4), right, alerts, len(all_developments)
    )
