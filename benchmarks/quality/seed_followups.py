"""Quality of story intelligence on the seed follow-ups (DESIGN §5), via the eval harness.

Builds stories from config/corpus, replays seed-followups/dev.jsonl in file order exactly
as `storywatch replay` does, and prints tracking and development precision/recall/F1.
Writes the numbers and the per-item decisions to benchmarks/results/seed_followups.json.
It is the `seed` set of `storywatch eval` (storyeval/harness.py), which runs every set:

    .venv/bin/python benchmarks/quality/seed_followups.py [--data PATH] [--corpus DIR] [-v]
    .venv/bin/storywatch eval            # all sets, table, JSON and plots
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storyeval.harness import LoadedSet, evaluate  # noqa: E402
from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import SEED_FILE, seed_protocol  # noqa: E402
from worker.decide.tracker import TrackerConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir() / SEED_FILE)
    parser.add_argument("--corpus", type=Path, default=ROOT / "config" / "corpus")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "seed_followups.json"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every decision")
    args = parser.parse_args()

    protocol = seed_protocol(args.data, args.corpus)
    result = evaluate(LoadedSet("seed", protocol=protocol), TrackerConfig())
    details = result.details
    mapping = details["mapping"]
    tracking, development = result.metrics["tracking"], result.metrics["development"]
    dev = details["development"]

    if args.verbose:
        for gold, out in zip(protocol.gold, details["decisions"], strict=True):
            mapped = mapping.get(out["story"]) if out["story"] else None
            mark = "ok " if mapped == gold.story else "BAD"
            flag = "NEW" if out["new_development"] else "   "
            print(
                f"{mark} {gold.id} gold={gold.story}/{gold.label}{list(gold.developments) or ''}"
                f" sys={out['story']} {out['score']:.2f} {flag}"
            )
            for fact in out["new_facts"]:
                print(f"        + {fact[:140]}")
    print(f"stories: {len(protocol.stories)}  items: {result.items}  replay: {result.seconds:.2f}s")
    print(f"tracking    P={tracking.precision:.3f} R={tracking.recall:.3f} F1={tracking.f1:.3f}")
    print(
        f"development P={development.precision:.3f} R={development.recall:.3f}"
        f" F1={development.f1:.3f}"
        f"  (alerts {dev['predicted']}, right {dev['correct']}, developments {dev['relevant']})"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "set": "seed",
        "data": str(args.data),
        "metrics": {k: dataclasses.asdict(m) for k, m in result.metrics.items()},
        "seconds": result.seconds,
        "items": result.items,
        **details,
    }
    args.output.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
