"""Leave-one-story-out cross-validation of the seed-followups numbers (issue 13, item 1).

What this module is for: telling how much of a full-set number comes from knobs fitted to
the very items they are judged on. The seed set is split by gold story: each fold holds
one story's items (and a round-robin share of the off-topic items). For each fold, the
knob setting with the best development F1 on the OTHER folds' items is chosen from a
small grid around the defaults, and the fold's items are scored with the decisions that
setting made. The folds' decisions together give the cross-validated numbers.

1. Every grid setting replays the whole stream once (a story learns from every article,
   as in the service); only the scoring is split by fold.
2. To choose, the training items' system stories are named by their own majority vote;
   to score the held-out items, by the vote over the whole stream under the chosen
   setting, as the full-set number names them: naming is not a knob, and a held-out
   story would otherwise have no training items to be named by.
3. Ties between settings go to the one nearest the defaults, so a flat fold keeps them.

When every fold picks the defaults, the cross-validated numbers equal the full-set ones;
the gap between them is the part of the full-set number the knobs were fitted for.

What it must not do: know any dataset's stories or words, or tune the service's
defaults (it only reports what choosing them blindly would have given).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from storyeval.metrics import (
    GoldItem,
    Scores,
    SystemItem,
    development_scores,
    map_stories,
    tracking_scores,
)
from storyeval.sets import TrackingProtocol
from worker.decide.replay import replay
from worker.decide.tracker import Tracker, TrackerConfig

# (TrackerConfig section, field) -> factors of its default. Few knobs, few values: the
# grid must stay small next to 9 folds of a few items each, or the choice is noise.
Knob = tuple[str, ...]  # a path into TrackerConfig: ("match", "threshold"), ("quiet_days",)
GRID: dict[Knob, tuple[float, ...]] = {
    ("match", "threshold"): (0.8, 1.0, 1.25),
    ("novelty", "covered"): (0.8, 1.0, 1.25),
    # Its default was read off the seed set: the folds must be free to choose otherwise.
    ("quiet_days",): (0.5, 1.0, 2.0),
}
_OFF_TOPIC = "(off-topic)"


@dataclass(frozen=True, slots=True)
class FoldResult:
    story: str  # the held-out gold story
    items: int
    chosen: dict[str, float]  # knob -> value chosen on the other folds
    development_f1: float  # on the held-out items, under the chosen setting


@dataclass(frozen=True, slots=True)
class CrossValidation:
    tracking: Scores
    development: Scores
    folds: tuple[FoldResult, ...]
    settings: int  # grid size


def _get(config: object, knob: Knob) -> float:
    for name in knob:
        config = getattr(config, name)
    if not isinstance(config, int | float):
        raise TypeError(f"{'.'.join(knob)} is not a number")
    return config


def with_knob(config: Any, knob: Knob, value: float) -> Any:
    """`config` with the field at `knob` replaced, keeping the field's type (int or float)."""
    head, *rest = knob
    current = getattr(config, head)
    new = with_knob(current, tuple(rest), value) if rest else type(current)(value)
    return dataclasses.replace(config, **{head: new})


def _setting(base: TrackerConfig, values: dict[Knob, float]) -> TrackerConfig:
    config = base
    for knob, value in values.items():
        config = with_knob(config, knob, value)
    return config


def grid(base: TrackerConfig) -> list[dict[Knob, float]]:
    """Every combination of the grid's factors applied to `base`'s values."""
    knobs = list(GRID)
    defaults = [_get(base, knob) for knob in knobs]
    return [
        {
            knob: round(default * factor, 4)
            for knob, default, factor in zip(knobs, defaults, combo, strict=True)
        }
        for combo in product(*(GRID[k] for k in knobs))
    ]


def folds_of(gold: Sequence[GoldItem]) -> list[str]:
    """Each item's fold: its gold story; off-topic items go round-robin over the stories
    (in stream order), so every fold also holds some of what must stay unmatched."""
    stories = sorted({g.story for g in gold if g.story is not None})
    fold: list[str] = []
    spare = 0
    for item in gold:
        if item.story is not None:
            fold.append(item.story)
        else:
            fold.append(stories[spare % len(stories)])
            spare += 1
    return fold


def _run(protocol: TrackingProtocol, config: TrackerConfig) -> list[SystemItem]:
    outputs = replay(Tracker(protocol.stories, config), protocol.stream)
    return [SystemItem(o["id"], o["story"], bool(o["new_development"])) for o in outputs]


def _subset(items: Sequence[Any], fold: Sequence[str], keep: set[str]) -> list[Any]:
    return [item for item, f in zip(items, fold, strict=True) if f in keep]


def _development_f1(
    system: Sequence[SystemItem],
    gold: Sequence[GoldItem],
    fold: Sequence[str],
    keep: set[str],
    gold_ids: bool,
) -> float:
    """Development F1 on the training items alone, their stories named by their own vote
    (the held-out labels must not steer the choice of knobs)."""
    items, labels = _subset(system, fold, keep), _subset(gold, fold, keep)
    mapping = _naming(items, labels, gold_ids)
    return development_scores(items, labels, mapping).f1


def _naming(
    system: Sequence[SystemItem], gold: Sequence[GoldItem], gold_ids: bool
) -> dict[str, str | None]:
    if gold_ids:  # the protocol names stories by their gold ids
        return {s.story: s.story for s in system if s.story is not None}
    return map_stories(system, gold)


def _distance(values: dict[Knob, float], base: TrackerConfig) -> float:
    return sum(abs(value / _get(base, knob) - 1.0) for knob, value in values.items())


def cross_validate(
    protocol: TrackingProtocol, base: TrackerConfig | None = None
) -> CrossValidation:
    """Leave-one-story-out development and tracking scores (see the module docstring)."""
    base = base or TrackerConfig()
    gold = list(protocol.gold)
    fold = folds_of(gold)
    settings = grid(base)
    runs: list[tuple[dict[Knob, float], list[SystemItem], dict[str, str | None]]] = []
    for values in settings:
        system = _run(protocol, _setting(base, values))
        runs.append((values, system, _naming(system, gold, protocol.gold_ids)))
    chosen_items: list[SystemItem | None] = [None] * len(gold)
    results: list[FoldResult] = []
    for story in sorted(set(fold)):
        training = set(fold) - {story}

        values, system, mapping = max(
            runs,
            key=lambda run: (
                _development_f1(run[1], gold, fold, training, protocol.gold_ids),
                -_distance(run[0], base),
            ),
        )
        held = development_scores(
            _subset(system, fold, {story}), _subset(gold, fold, {story}), mapping
        )
        for index, f in enumerate(fold):
            if f == story:
                item = system[index]
                # Name the system story by the chosen run's vote, so that the pooled score
                # below can use one mapping: the gold id itself (or None).
                named = (mapping.get(item.story) or _OFF_TOPIC) if item.story else None
                chosen_items[index] = dataclasses.replace(item, story=named)
        results.append(
            FoldResult(
                story,
                fold.count(story),
                {".".join(k): v for k, v in values.items()},
                held.f1,
            )
        )
    pooled = [item for item in chosen_items if item is not None]
    # Pooled items carry gold ids, or _OFF_TOPIC for a story the vote named off-topic
    # (still a match, so still counted against precision).
    identity: dict[str, str | None] = {
        i.story: (None if i.story == _OFF_TOPIC else i.story) for i in pooled if i.story
    }
    return CrossValidation(
        tracking=tracking_scores(pooled, gold, identity),
        development=development_scores(pooled, gold, identity),
        folds=tuple(results),
        settings=len(settings),
    )
