"""Evaluation metrics of DESIGN §5 and issue 3 over labelled streams (pure functions, tested).

What this module is for: scoring a replay's output against gold labels:
- tracking precision/recall/F1 over story assignments (system story ids mapped to gold ids
  by majority vote, or by a given mapping when the protocol names stories by gold id);
- development precision/recall/F1 (an alert is right when its item is a gold new
  development of the right story carrying a development no earlier alert got);
- alert-date precision/recall/F1 per story against timeline dates, macro-averaged;
- nugget precision/recall of emitted sentences (TREC Temporal Summarization style: an
  emitted sentence is right when it matches a nugget no earlier emitted sentence matched)
  and the latency of the first match of each nugget.

What it must not do: read files, run the system or know any dataset; `storyeval.sets`,
`storyeval.trec` and `storyeval.harness` do that.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol


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


def tracking_scores(
    system: Sequence[SystemItem],
    gold: Sequence[GoldItem],
    mapping: Mapping[str, str | None] | None = None,
) -> Scores:
    """Precision over assigned items, recall over gold on-topic items.

    `mapping` (system story id -> gold story id) defaults to the majority vote; protocols
    whose stories carry the gold ids pass the identity, so that a story that drifted to
    another topic is not silently renamed.
    """
    mapping = map_stories(system, gold) if mapping is None else mapping
    pairs = _paired(system, gold)
    predicted = sum(1 for s, _ in pairs if s.story is not None)
    correct = sum(
        1
        for s, g in pairs
        if s.story is not None and g.story is not None and mapping.get(s.story) == g.story
    )
    relevant = sum(1 for g in gold if g.story is not None)
    return _scores(correct, predicted, relevant)


def credit(gold: GoldItem, mapped_story: str | None, credited: set[str]) -> bool:
    """Is an alert on this item, whose system story maps to `mapped_story`, right? It is
    when it brings a gold development not yet in `credited` (then added to it)."""
    fresh = set(gold.developments) - credited
    right = (
        gold.label == "new_development"
        and gold.story is not None
        and mapped_story == gold.story
        and bool(fresh)
    )
    if right:
        credited |= fresh
    return right


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
        right += credit(g, mapping.get(s.story), credited)
    all_developments = {d for g in gold for d in g.developments}
    precision = right / alerts if alerts else 0.0
    recall = len(credited) / len(all_developments) if all_developments else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(
        round(precision, 4), round(recall, 4), round(f1, 4), right, alerts, len(all_developments)
    )


# ---------------------------------------------------------------------------------------
# Macro averages, alert dates, nuggets


@dataclass(frozen=True, slots=True)
class MacroScores:
    """Precision, recall and F1 averaged over units (stories, topics), each unit equal."""

    precision: float
    recall: float
    f1: float
    units: int


class _PRF(Protocol):
    @property
    def precision(self) -> float: ...
    @property
    def recall(self) -> float: ...
    @property
    def f1(self) -> float: ...


def macro_average(per_unit: Iterable[_PRF]) -> MacroScores:
    """Mean of each unit's P, R and F1 (F1 is averaged, not recomputed from the means)."""
    units = list(per_unit)
    if not units:
        return MacroScores(0.0, 0.0, 0.0, 0)
    return MacroScores(
        round(statistics.fmean(u.precision for u in units), 4),
        round(statistics.fmean(u.recall for u in units), 4),
        round(statistics.fmean(u.f1 for u in units), 4),
        len(units),
    )


def date_scores(alert_days: Collection[date], timeline_days: Collection[date]) -> Scores:
    """Alert-date P/R/F1 of one story: the days with an alert vs the timeline's days (exact)."""
    alerts, timeline = set(alert_days), set(timeline_days)
    return _scores(len(alerts & timeline), len(alerts), len(timeline))


def resolve_duplicates(
    matches: Mapping[str, Collection[str]], duplicate_of: Mapping[str, str]
) -> dict[str, frozenset[str]]:
    """Update id -> nuggets, where every copy of a duplicated sentence shares its nuggets.

    TREC-TS assessors judged one copy of each duplicated sentence (`duplicate_id` names
    the original); a system that emits another copy emitted the same text and earns the
    same nuggets. Copies are grouped by their root original (chains are followed), and
    each member gets the union of the group's judged nuggets.
    """

    def root(update: str) -> str:
        seen = {update}
        while update in duplicate_of and duplicate_of[update] not in seen:
            update = duplicate_of[update]
            seen.add(update)
        return update

    groups: dict[str, set[str]] = defaultdict(set)
    for update in set(matches) | set(duplicate_of):
        original = root(update)
        groups[original].update((update, original))
    resolved: dict[str, frozenset[str]] = {}
    for members in groups.values():
        nuggets = frozenset(n for m in members for n in matches.get(m, ()))
        if nuggets:
            resolved.update(dict.fromkeys(members, nuggets))
    return resolved


@dataclass(frozen=True, slots=True)
class Emission:
    """One sentence the system emitted (a `new_facts` sentence mapped to its update)."""

    update_id: str | None  # None: the sentence could not be traced to a pooled update
    time: float  # epoch seconds of the document it came from


@dataclass(frozen=True, slots=True)
class NuggetScores:
    precision: float
    recall: float
    f1: float
    right: int  # emitted sentences that brought a nugget not matched before
    emitted: int
    nuggets: int  # nuggets with at least one matching update in the pool
    found: int  # of those, nuggets matched by an emitted sentence
    latencies_hours: tuple[float, ...]  # per found nugget: first emission - first pooled


def nugget_scores(
    emitted: Sequence[Emission],
    update_nuggets: Mapping[str, Collection[str]],
    first_pooled: Mapping[str, float],
) -> NuggetScores:
    """Score emitted sentences, in emission order, against the nuggets they match.

    `update_nuggets` maps update ids (duplicates resolved) to nuggets; `first_pooled` maps
    every nugget that some pooled update matches to the earliest such update's time, and
    is the recall denominator (a nugget nobody retrieved cannot be found).
    """
    found: dict[str, float] = {}
    right = 0
    for emission in emitted:
        nuggets = update_nuggets.get(emission.update_id or "", ())
        fresh = [n for n in nuggets if n in first_pooled and n not in found]
        if fresh:
            right += 1
            for nugget in fresh:
                found[nugget] = emission.time
    precision = right / len(emitted) if emitted else 0.0
    recall = len(found) / len(first_pooled) if first_pooled else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    latencies = tuple(
        round(max(0.0, found[n] - first_pooled[n]) / 3600.0, 3) for n in sorted(found)
    )
    return NuggetScores(
        round(precision, 4),
        round(recall, 4),
        round(f1, 4),
        right,
        len(emitted),
        len(first_pooled),
        len(found),
        latencies,
    )


def median_or_none(values: Iterable[float]) -> float | None:
    collected = list(values)
    return round(statistics.median(collected), 3) if collected else None
