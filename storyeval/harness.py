"""The evaluation harness behind `storywatch eval` (issue 3, item 4).

What this module is for: running every evaluation set of `shared/data/` through the
tracker with ONE configuration (the default `TrackerConfig` unless a caller passes
another), scoring it with `storyeval.metrics`, and sweeping the main decision thresholds
(the match threshold and the novelty coverage threshold) one at a time around their
defaults for the precision/recall plots (`storyeval.sweep`). The protocols are documented in
`storyeval.sets` (seed, T17, hamborg) and `storyeval.trec` (TREC-TS).

Replays run exactly as `storywatch replay` does: decide, then learn, article by article.
Sweeps of the large sets run on a deterministic subsample (every n-th T17 stream article,
every n-th TREC-TS topic) so that the whole harness stays within minutes; the sample is
named in the results and on the plots. Headline numbers always use the full sets.

What it must not do: tune anything per set (every set gets the same configuration), print,
or write files; `storyeval.report` and the CLI do that.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from storyeval.metrics import (
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
from storyeval.sets import (
    HAMBORG_FILE,
    SEED_FILE,
    T17_ARTICLES,
    T17_TIMELINES,
    TrackingProtocol,
    hamborg_protocol,
    seed_protocol,
    t17_one_folder_protocol,
    t17_protocol,
    t17_timelines,
)
from storyeval.trec import TrecTopic, available_years, read_year
from worker.decide.replay import replay
from worker.decide.surge import publication_day
from worker.decide.tracker import Tracker, TrackerConfig

SET_NAMES = ("seed", "t17", "t17-one-folder", "trec", "hamborg")
RESULT_FILES = {
    "seed": "seed_followups.json",
    "t17": "t17.json",
    "t17-one-folder": "t17_one_folder_eval.json",
    "trec": "trec_ts.json",
    "hamborg": "hamborg_events.json",
}


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


def metric_of(scores: Any) -> Metric:
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
    metrics = {"tracking": metric_of(tracking)}
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
        metrics["development"] = metric_of(development)
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
