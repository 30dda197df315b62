"""What bounding a story's knowledge costs (issue 15): quality, time and memory per bound.

A story keeps at most `TrackerConfig.max_known_sentences` learned sentences; past it the
oldest, least informative quarter is folded away (`KnowledgeBase.fold`). Timeline17 is
the only labelled set whose stories reach any bound worth having (its oil spill learns
48,434 sentences), so this replays Timeline17 with each bound and reports tracking F1,
alert-date F1, replay seconds, the sentences the largest story holds at the end and the
resident memory the replay added to its process (VmRSS after the replay less VmRSS
after loading the set; one fresh process per bound):

    .venv/bin/python benchmarks/quality/knowledge_bound.py [--bounds 1000000,20000,10000]

Runs the bounds in parallel (one process each, `--jobs`) and writes
benchmarks/results/knowledge_bound.json. About 90 s a bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storyeval.harness import _alert_dates, load_set  # noqa: E402
from storyeval.metrics import SystemItem, tracking_scores  # noqa: E402
from storyeval.report import REPO, default_data_dir  # noqa: E402
from worker.decide.replay import replay  # noqa: E402
from worker.decide.tracker import Tracker, TrackerConfig  # noqa: E402


def _rss() -> int:
    """Resident bytes of this process now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _measure(bound: int, data: Path) -> dict[str, Any]:
    loaded = load_set("t17", data, REPO / "config" / "corpus")
    protocol = loaded.protocol
    assert protocol is not None
    config = dataclasses.replace(TrackerConfig(), max_known_sentences=bound)
    baseline = _rss()
    started = time.perf_counter()
    tracker = Tracker(protocol.stories, config)
    outputs = list(replay(tracker, protocol.stream))
    seconds = time.perf_counter() - started
    held = _rss() - baseline
    system = [SystemItem(o["id"], o["story"], bool(o["new_development"])) for o in outputs]
    mapping: dict[str, str | None] = {s.id: s.id for s in protocol.stories}
    tracking = tracking_scores(system, list(protocol.gold), mapping)
    dates = _alert_dates(protocol, outputs, loaded.timelines)
    largest = max(len(tracker._knowledge[s].sentences) for s in tracker.story_ids)
    return {
        "max_known_sentences": bound,
        "tracking_f1": round(tracking.f1, 4),
        "alert_dates_precision": round(dates["precision"], 4),
        "alert_dates_recall": round(dates["recall"], 4),
        "alert_dates_f1": round(dates["f1"], 4),
        "alerts": sum(1 for o in outputs if o["new_development"]),
        "replay_seconds": round(seconds, 1),
        "largest_story_sentences": largest,
        "rss_added_mib": round(held / 2**20, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--bounds", default="1000000,20000,10000")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "knowledge_bound.json"
    )
    args = parser.parse_args()
    bounds = [int(b) for b in args.bounds.split(",")]
    # A fresh process per bound: resident memory is not given back within one.
    with ProcessPoolExecutor(args.jobs, max_tasks_per_child=1) as pool:
        rows = list(pool.map(_measure, bounds, [args.data] * len(bounds)))
    for row in rows:
        print(json.dumps(row))
    args.output.write_text(
        json.dumps(
            {"set": "t17", "default": TrackerConfig().max_known_sentences, "rows": rows}, indent=2
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
