"""The evaluation harness behind `storywatch eval` (issue 3, item 4).

What this module is for: running every evaluation set of `shared/data/` through the
tracker with ONE configuration (the default `TrackerConfig` unless a caller passes
another), scoring it with `worker.evaluation`, and sweeping the main decision thresholds
(the match threshold and the novelty coverage threshold) one at a time around their
defaults for the precision/recall plots. The protocols are documented in
`worker.eval_sets` (seed, T17, hamborg) and `worker.eval_trec` (TREC-TS).

Replays run exactly as `storywatch replay` does: decide, then learn, article by article.
Sweeps of the large sets run on a deterministic subsample (every n-th T17 stream article,
every n-th TREC-TS topic) so that the whole harness stays within minutes; the sample is
named in the results and on the plots. Headline numbers always use the full sets.

What it must not do: tune anything per set (every set gets the same configuration), print,
or write files; `worker.eval_report` and the CLI do that.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from worker.decide.surge import publication_day
from worker.decide.tracker import Tracker, TrackerConfig
from worker.eval_cv import GRID, cross_validate
from worker.eval_sets import (
    HAMBORG_FILE,
    SEED_FILE,
    T17_ARTICLES,
    T17_TIMELINES,
    TrackingProtocol,
    hamborg_protocol,
    seed_protocol,
    subsample,
    t17_one_folder_protocol,
    t17_protocol,
    t17_timelines,
)
from worker.eval_trec import TrecTopic, available_years, read_year
from worker.evaluation import (
    Emission,
    SystemItem,
    date_scores,
    development_scores,
    macro_average,
    map_stories,
    median_or_none,
    nugget_scores,
    tracking_scores,
)
from worker.replay import replay

SET_NAMES = ("seed", "t17", "t17-one-folder", "trec", "hamborg")
RESULT_FILES = {
    "seed": "seed_followups.json",
    "t17": "t17.json",
    "t17-one-folder": "t17_one_folder_eval.json",
    "trec": "trec_ts.json",
    "hamborg": "hamborg_events.json",
}
# The decision thresholds the plots sweep: (TrackerConfig section, field). A field that
# no longer exists is skipped (and named in the results), so renaming one never breaks
# the harness.
SWEEP_KNOBS = (("match", "threshold"), ("novelty", "covered"))
SWEEP_FACTORS = (0.5, 0.67, 0.83, 1.0, 1.17, 1.33, 1.5)
# Subsampling for sweeps only: a full T17 replay takes minutes, 14 of them would not do.
SWEEP_STRIDE = {"t17": 8, "t17-one-folder": 8, "trec": 3}


@dataclass(frozen=True, slots=True)
class Metric:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True, slots=True)
class LoadedSet:
    """An evaluation set read from disk: a tracking protocol, or TREC-TS topics."""

    name: str
    protocol: TrackingProtocol | None = None
    topics: tuple[TrecTopic, ...] = ()
    timelines: dict[str, set[date]] = field(default_factory=dict)

    def sample(self) -> tuple[LoadedSet, str]:
        """The sweep's subsample of this set, and a note saying what it is."""
        stride = SWEEP_STRIDE.get(self.name, 1)
        if stride <= 1:
            return self, "full set"
        if self.protocol is not None:
            sampled = subsample(self.protocol, stride)
            note = f"1 in {stride} stream articles ({len(sampled.stream)} of "
            return dataclasses.replace(self, protocol=sampled), note + f"{self.size})"
        topics = self.topics[::stride]
        note = f"1 in {stride} topics ({len(topics)} of {len(self.topics)})"
        return dataclasses.replace(self, topics=topics), note

    @property
    def size(self) -> int:
        if self.protocol is not None:
            return len(self.protocol.stream)
        return sum(len(t.documents) for t in self.topics)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One set scored under one configuration."""

    metrics: dict[str, Metric]
    seconds: float  # replay wall time (decide + learn), story building excluded
    items: int  # stream articles (documents for TREC-TS)
    details: dict[str, Any]  # JSON-ready: per-story / per-topic numbers, decisions
    # Replay CPU time of this process: on a shared machine wall time measures the load of
    # others too; CPU time is what the replay itself cost.
    cpu_seconds: float = 0.0


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


# ---------------------------------------------------------------------------------------
# Loading


def set_available(name: str, data_dir: Path) -> bool:
    paths = {
        "seed": [SEED_FILE],
        "t17": [T17_ARTICLES, T17_TIMELINES],
        "t17-one-folder": [T17_ARTICLES],
        "hamborg": [HAMBORG_FILE],
    }
    if name == "trec":
        return bool(available_years(data_dir))
    return all((data_dir / p).is_file() for p in paths[name])


def load_set(name: str, data_dir: Path, corpus_dir: Path) -> LoadedSet:
    if name == "seed":
        return LoadedSet(name, protocol=seed_protocol(data_dir / SEED_FILE, corpus_dir))
    if name == "t17":
        return LoadedSet(name, protocol=t17_protocol(data_dir), timelines=t17_timelines(data_dir))
    if name == "t17-one-folder":
        return LoadedSet(name, protocol=t17_one_folder_protocol(data_dir))
    if name == "hamborg":
        return LoadedSet(name, protocol=hamborg_protocol(data_dir))
    if name == "trec":
        topics = [t for year in available_years(data_dir) for t in read_year(data_dir, year)]
        return LoadedSet(name, topics=tuple(topics))
    raise ValueError(f"unknown evaluation set {name!r}; known: {', '.join(SET_NAMES)}")


# ---------------------------------------------------------------------------------------
# Scoring one set under one configuration


def _metric(scores: Any) -> Metric:
    return Metric(scores.precision, scores.recall, scores.f1)


def _replay(
    protocol: TrackingProtocol, config: TrackerConfig
) -> tuple[list[dict[str, Any]], float, float]:
    tracker = Tracker(protocol.stories, config)
    started, cpu = time.perf_counter(), time.process_time()
    outputs = list(replay(tracker, protocol.stream))
    return outputs, time.perf_counter() - started, time.process_time() - cpu


def evaluate_tracking(loaded: LoadedSet, config: TrackerConfig) -> Evaluation:
    """Seed, T17 and hamborg: replay the stream, score tracking (and what else applies)."""
    protocol = loaded.protocol
    if protocol is None:
        raise ValueError(f"{loaded.name}: not a tracking protocol")
    outputs, seconds, cpu_seconds = _replay(protocol, config)
    system = [SystemItem(o["id"], o["story"], bool(o["new_development"])) for o in outputs]
    gold = list(protocol.gold)
    mapping: dict[str, str | None] = (
        {s.id: s.id for s in protocol.stories} if protocol.gold_ids else map_stories(system, gold)
    )
    tracking = tracking_scores(system, gold, mapping)
    metrics = {"tracking": _metric(tracking)}
    details: dict[str, Any] = {
        "stories": [s.id for s in protocol.stories],
        "tracking": dataclasses.asdict(tracking),
    }
    if not protocol.gold_ids:
        details["mapping"] = mapping
    off_topic = [s for s, g in zip(system, gold, strict=True) if g.story is None]
    details["off_topic_matched"] = sum(1 for s in off_topic if s.story is not None)
    details["off_topic_items"] = len(off_topic)
    if any(g.developments for g in gold):
        development = development_scores(system, gold, mapping)
        metrics["development"] = _metric(development)
        details["development"] = dataclasses.asdict(development)
    if loaded.timelines:
        dates = _alert_dates(protocol, outputs, loaded.timelines)
        metrics["alert_dates"] = Metric(dates["precision"], dates["recall"], dates["f1"])
        details["alert_dates"] = dates
    # Seed decisions keep their new facts (59 rows, read by people); the large sets keep
    # the decision only, so the committed files stay small enough to diff.
    keep = ("id", "story", "score", "new_development") + (
        ("new_facts",) if loaded.name == "seed" else ()
    )
    details["decisions"] = [{k: o[k] for k in keep} for o in outputs]
    return Evaluation(metrics, round(seconds, 3), len(outputs), details, round(cpu_seconds, 3))


def _alert_dates(
    protocol: TrackingProtocol, outputs: Sequence[dict[str, Any]], timelines: dict[str, set[date]]
) -> dict[str, Any]:
    """Per tracked story, alert days vs timeline days; macro average over the stories."""
    alert_days: dict[str, set[date]] = defaultdict(set)
    for article, output in zip(protocol.stream, outputs, strict=True):
        if output["new_development"] and output["story"] and article.published:
            alert_days[output["story"]].add(publication_day(article.published))
    per_story = {
        story.id: date_scores(alert_days.get(story.id, set()), timelines.get(story.id, set()))
        for story in protocol.stories
    }
    macro = macro_average(per_story.values())
    return {
        "precision": macro.precision,
        "recall": macro.recall,
        "f1": macro.f1,
        "stories": macro.units,
        "per_story": {k: dataclasses.asdict(v) for k, v in per_story.items()},
    }


def evaluate_trec(loaded: LoadedSet, config: TrackerConfig) -> Evaluation:
    """TREC-TS: one tracker per topic; emitted sentences are the alerts' new facts."""
    per_topic: dict[str, Any] = {}
    scored = []
    latencies: list[float] = []
    seconds = cpu_seconds = 0.0
    documents = 0
    for topic in loaded.topics:
        tracker = Tracker([topic.story], config)
        emitted: list[Emission] = []
        matched = alerts = untraced = 0
        started, cpu = time.perf_counter(), time.process_time()
        for document in topic.documents:
            article = document.article()
            decision = tracker.decide(article)
            tracker.learn(article, decision)
            matched += decision.match is not None
            if decision.new_development and decision.novelty is not None:
                alerts += 1
                for sentence in decision.novelty.new_facts:
                    update_id = document.trace(sentence)
                    untraced += update_id is None
                    emitted.append(Emission(update_id, document.time))
        seconds += time.perf_counter() - started
        cpu_seconds += time.process_time() - cpu
        documents += len(topic.documents)
        scores = nugget_scores(emitted, topic.update_nuggets, topic.first_pooled)
        per_topic[topic.query_id] = {
            "title": topic.story.title,
            "documents": len(topic.documents),
            "matched": matched,
            "alerts": alerts,
            "untraced_sentences": untraced,
            "nuggets_written": topic.nuggets_total,
            **{k: v for k, v in dataclasses.asdict(scores).items() if k != "latencies_hours"},
            "median_latency_hours": median_or_none(scores.latencies_hours),
        }
        if scores.nuggets:  # recall is undefined for a topic whose nuggets nobody pooled
            scored.append(scores)
            latencies.extend(scores.latencies_hours)
    macro = macro_average(scored)
    details = {
        "topics": len(loaded.topics),
        "scored_topics": macro.units,
        "emitted": sum(s.emitted for s in scored),
        "median_latency_hours": median_or_none(latencies),
        "per_topic": per_topic,
    }
    return Evaluation(
        {"nuggets": Metric(macro.precision, macro.recall, macro.f1)},
        round(seconds, 3),
        documents,
        details,
        round(cpu_seconds, 3),
    )


def evaluate(loaded: LoadedSet, config: TrackerConfig) -> Evaluation:
    if loaded.protocol is not None:
        return evaluate_tracking(loaded, config)
    return evaluate_trec(loaded, config)


# ---------------------------------------------------------------------------------------
# Threshold sweeps


def swept_config(base: TrackerConfig, knob: tuple[str, str], value: float) -> TrackerConfig:
    """`base` with one field of one section replaced, everything else unchanged."""
    section_name, field_name = knob
    section = getattr(base, section_name)
    return dataclasses.replace(
        base, **{section_name: dataclasses.replace(section, **{field_name: value})}
    )


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
    sample, note = loaded.sample()
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
    """The seed numbers with their leave-one-story-out twins (worker.eval_cv)."""
    cv = cross_validate(protocol, config)
    metrics = {
        **evaluation.metrics,
        "tracking (LOSO CV)": _metric(cv.tracking),
        "development (LOSO CV)": _metric(cv.development),
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
