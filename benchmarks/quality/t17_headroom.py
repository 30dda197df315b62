"""How much alert-date F1 can any choice of alert days reach on Timeline17, given our matching?

Issue 3 asks for alert-date F1 >= 0.65 on Timeline17 (the best published offline systems
reach 0.54). This benchmark replays the stream once, exactly as `storywatch eval` does,
and scores simple day-selection rules against the same timelines, so a proposed change
can be judged against what the signals allow before anyone tunes a knob:

- `system`: the days with an alert (the number `storywatch eval` reports);
- `every matched day`: an alert on every day the story got a report; the baseline any
  novelty test must beat;
- `matched days with >= K reports` and `alert days with >= 2 reports`: volume, the best
  single online signal of an important day (see the AUC below);
- `ceiling: timeline days with a matched report`: a perfect day selector on top of the
  current matching (precision 1);
- `ceiling: timeline days with any report`: perfect matching and day selection; timeline
  days with no article of the story in the stream cannot be hit by any system.

It also reports, per story, how well the day's number of matched reports separates
timeline days from the story's other matched days (ROC AUC, Mann-Whitney): 0.5 is chance.

    .venv/bin/python benchmarks/quality/t17_headroom.py [--data DIR] [--stride N]

Writes benchmarks/results/t17_headroom.json. About 4 minutes for the full stream.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storyeval.metrics import date_scores, macro_average  # noqa: E402
from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import T17_CORPUS_SIZE, subsample, t17_protocol, t17_timelines  # noqa: E402
from worker.decide.replay import replay  # noqa: E402
from worker.decide.surge import publication_day  # noqa: E402
from worker.decide.tracker import Tracker, TrackerConfig  # noqa: E402
from worker.models import Article  # noqa: E402

Days = dict[str, set[date]]


@dataclasses.dataclass(frozen=True, slots=True)
class StoryDays:
    """What one story's replay looked like, day by day."""

    reports: Counter[date]  # matched reports per publication day
    alerts: Counter[date]  # alerts per publication day
    present: set[date]  # days with any stream article of the story (gold), matched or not
    timeline: set[date]


def story_days(
    story_ids: Sequence[str],
    stream: Sequence[Article],
    gold_stories: Sequence[str | None],
    outputs: Sequence[Mapping[str, Any]],
    timelines: Mapping[str, set[date]],
) -> dict[str, StoryDays]:
    days = {
        s: StoryDays(Counter(), Counter(), set(), set(timelines.get(s, set()))) for s in story_ids
    }
    for article, gold, output in zip(stream, gold_stories, outputs, strict=True):
        if article.published is None:
            continue
        day = publication_day(article.published)
        if gold in days:
            days[gold].present.add(day)
        story = output["story"]
        if story in days:
            days[story].reports[day] += 1
            if output["new_development"]:
                days[story].alerts[day] += 1
    return days


def _with_reports(k: int) -> Callable[[StoryDays], set[date]]:
    def rule(days: StoryDays) -> set[date]:
        return {day for day, n in days.reports.items() if n >= k}

    return rule


def _rules() -> dict[str, Callable[[StoryDays], set[date]]]:
    rules: dict[str, Callable[[StoryDays], set[date]]] = {
        "system": lambda d: set(d.alerts),
        "every matched day": lambda d: set(d.reports),
    }
    for k in (2, 3, 4):
        rules[f"matched days with >= {k} reports"] = _with_reports(k)
    rules["alert days with >= 2 reports"] = lambda d: set(d.alerts) & _with_reports(2)(d)
    rules["ceiling: timeline days with a matched report"] = lambda d: set(d.reports) & d.timeline
    rules["ceiling: timeline days with any report"] = lambda d: d.present & d.timeline
    return rules


def volume_auc(days: StoryDays) -> float | None:
    """P(a timeline day has more matched reports than a non-timeline matched day); ties 1/2."""
    positive = [n for day, n in days.reports.items() if day in days.timeline]
    negative = [n for day, n in days.reports.items() if day not in days.timeline]
    if not positive or not negative:
        return None
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in positive for q in negative)
    return round(wins / (len(positive) * len(negative)), 3)


def score_rules(days: Mapping[str, StoryDays]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name, rule in _rules().items():
        per_story = {s: date_scores(rule(d), d.timeline) for s, d in days.items()}
        macro = macro_average(per_story.values())
        table[name] = {
            "precision": macro.precision,
            "recall": macro.recall,
            "f1": macro.f1,
            "per_story": {s: dataclasses.asdict(v) for s, v in per_story.items()},
        }
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--stride", type=int, default=1, help="replay every N-th article")
    parser.add_argument("--corpus-size", type=int, default=T17_CORPUS_SIZE, help=argparse.SUPPRESS)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "t17_headroom.json"
    )
    args = parser.parse_args()

    protocol = subsample(t17_protocol(args.data, args.corpus_size), args.stride)
    timelines = t17_timelines(args.data)
    outputs = list(replay(Tracker(protocol.stories, TrackerConfig()), protocol.stream))
    story_ids = [s.id for s in protocol.stories]
    days = story_days(
        story_ids, protocol.stream, [g.story for g in protocol.gold], outputs, timelines
    )
    table = score_rules(days)

    print(f"Timeline17 alert-date F1 by day rule (stride {args.stride}; macro over stories)")
    for name, row in table.items():
        print(f"  {name:46s} P={row['precision']:.3f} R={row['recall']:.3f} F1={row['f1']:.3f}")
    aucs = {s: volume_auc(d) for s, d in days.items()}
    print("reports per day as a timeline-day signal (ROC AUC over matched days):")
    for story, auc in aucs.items():
        print(f"  {story:24s} {'-' if auc is None else f'{auc:.3f}'}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "set": "t17",
        "stride": args.stride,
        "rules": table,
        "volume_auc": aucs,
        "days": {
            s: {
                "matched": len(d.reports),
                "alerted": len(d.alerts),
                "with_report": len(d.present),
                "timeline": len(d.timeline),
            }
            for s, d in days.items()
        },
    }
    args.output.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
