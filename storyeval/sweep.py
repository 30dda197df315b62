"""Threshold sweeps and whole-set runs of `storywatch eval`.

`sweep` moves each main decision threshold (the match threshold and the novelty
coverage) one at a time around its default, on a deterministic subsample of the large
sets (every n-th T17 stream article, every n-th TREC-TS topic, named in the results), for
the precision/recall plots. `run_set` is one set's whole run: the full-set numbers at one
configuration, the seed set's leave-one-story-out twins (`storyeval.cv`), and the sweep.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from storyeval.cv import GRID, cross_validate, with_knob
from storyeval.harness import Evaluation, LoadedSet, Metric, evaluate, load_set, metric_of
from storyeval.sets import TrackingProtocol, subsample
from worker.decide.tracker import TrackerConfig

# The decision thresholds the plots sweep: (TrackerConfig section, field). A field that
# no longer exists is skipped (and named in the results), so renaming one never breaks
# the harness.
SWEEP_KNOBS = (("match", "threshold"), ("novelty", "covered"))
SWEEP_FACTORS = (0.5, 0.67, 0.83, 1.0, 1.17, 1.33, 1.5)
# Subsampling for sweeps only: a full T17 replay takes minutes, 14 of them would not do.
SWEEP_STRIDE = {"t17": 8, "t17-one-folder": 8, "trec": 3}


@dataclass(frozen=True, slots=True)
class SweepPoint:
    knob: str  # "match.threshold"
    value: float
    is_default: bool
    metrics: dict[str, Metric]


@dataclass(frozen=True, slots=True)
class SetResult:
    name: str
    evaluation: Evaluation
    sweep: tuple[SweepPoint, ...]
    sweep_note: str
    skipped_knobs: tuple[str, ...] = ()


def sweep_sample(loaded: LoadedSet) -> tuple[LoadedSet, str]:
    """The sweep's subsample of a set, and a note saying what it is."""
    stride = SWEEP_STRIDE.get(loaded.name, 1)
    if stride <= 1:
        return loaded, "full set"
    if loaded.protocol is not None:
        sampled = subsample(loaded.protocol, stride)
        note = f"1 in {stride} stream articles ({len(sampled.stream)} of "
        return dataclasses.replace(loaded, protocol=sampled), note + f"{loaded.size})"
    topics = loaded.topics[::stride]
    note = f"1 in {stride} topics ({len(topics)} of {len(loaded.topics)})"
    return dataclasses.replace(loaded, topics=topics), note


def swept_config(base: TrackerConfig, knob: tuple[str, str], value: float) -> TrackerConfig:
    """`base` with one field of one section replaced, everything else unchanged."""
    config: TrackerConfig = with_knob(base, knob, value)
    return config


def knob_default(base: TrackerConfig, knob: tuple[str, str]) -> float | None:
    section = getattr(base, knob[0], None)
    if section is None or knob[1] not in {f.name for f in dataclasses.fields(section)}:
        return None
    value = getattr(section, knob[1])
    return float(value) if isinstance(value, int | float) else None


def _sweep_job(job: tuple[LoadedSet, TrackerConfig, str, float, bool]) -> SweepPoint:
    loaded, config, knob, value, is_default = job
    return SweepPoint(knob, value, is_default, evaluate(loaded, config).metrics)


def sweep(
    loaded: LoadedSet, base: TrackerConfig, jobs: int = 1
) -> tuple[tuple[SweepPoint, ...], str, tuple[str, ...]]:
    """Each knob at each factor of its default (others at default), on the sweep sample."""
    sample, note = sweep_sample(loaded)
    work: list[tuple[LoadedSet, TrackerConfig, str, float, bool]] = []
    skipped: list[str] = []
    for knob in SWEEP_KNOBS:
        default = knob_default(base, knob)
        name = ".".join(knob)
        if default is None:
            skipped.append(name)
            continue
        for factor in SWEEP_FACTORS:
            value = round(default * factor, 4)
            work.append((sample, swept_config(base, knob, value), name, value, factor == 1.0))
    if jobs > 1 and len(work) > 1:
        # Sweep points are independent replays: one process per core halves the wait.
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            points = tuple(pool.map(_sweep_job, work))
    else:
        points = tuple(_sweep_job(item) for item in work)
    return points, note, tuple(skipped)


def _with_cross_validation(
    evaluation: Evaluation, protocol: TrackingProtocol, config: TrackerConfig
) -> Evaluation:
    """The seed numbers with their leave-one-story-out twins (storyeval.cv)."""
    cv = cross_validate(protocol, config)
    metrics = {
        **evaluation.metrics,
        "tracking (LOSO CV)": metric_of(cv.tracking),
        "development (LOSO CV)": metric_of(cv.development),
    }
    details = {
        **evaluation.details,
        "cross_validation": {
            "method": "leave one gold story out; knobs chosen on the other stories' items",
            "grid": {".".join(k): list(v) for k, v in GRID.items()},
            "tracking": dataclasses.asdict(cv.tracking),
            "development": dataclasses.asdict(cv.development),
            "folds": [dataclasses.asdict(f) for f in cv.folds],
        },
    }
    return dataclasses.replace(evaluation, metrics=metrics, details=details)


def run_set(
    name: str,
    data_dir: Path,
    corpus_dir: Path,
    *,
    config: TrackerConfig | None = None,
    with_sweep: bool = True,
    jobs: int = 1,
) -> SetResult:
    """Load, evaluate at `config` (default: `TrackerConfig()`), and optionally sweep."""
    config = config or TrackerConfig()
    loaded = load_set(name, data_dir, corpus_dir)
    evaluation = evaluate(loaded, config)
    if name == "seed" and loaded.protocol is not None:
        evaluation = _with_cross_validation(evaluation, loaded.protocol, config)
    if not with_sweep:
        return SetResult(name, evaluation, (), "no sweep")
    points, note, skipped = sweep(loaded, config, jobs)
    return SetResult(name, evaluation, points, note, skipped)
