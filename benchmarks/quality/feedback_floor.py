"""A mechanism tried for issue 16 and not kept: after a "wrong story" verdict, the story
no longer alerts (or, on sets judged by matches, matches) at or below the match score of
the article judged wrong. Measured on the same replays `feedback_effect.py` makes.

The replay with feedback is the service's own (`storyeval.feedback`); the floor is then
applied to its alerts in order, each verdict raising its story's floor to the judged
alert's match score. Alerts under a floor are counted as dropped (an approximation: a
dropped alert would not have been learned as a development either, which can change
later decisions of that story slightly).

    .venv/bin/python benchmarks/quality/feedback_floor.py [--set seed|hamborg|t17] [--every]

Writes benchmarks/results/feedback_floor_SET[_every].json: later wrong alerts (after each
story's first verdict) with and without the floor, and the right alerts it drops.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storyeval.feedback import answered_run  # noqa: E402
from storyeval.harness import load_set  # noqa: E402
from storyeval.report import REPO, default_data_dir  # noqa: E402
from worker.decide.tracker import TrackerConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--set", default="seed")
    parser.add_argument("--every", action="store_true", help="answer every wrong alert")
    args = parser.parse_args()
    protocol = load_set(args.set, args.data, REPO / "config" / "corpus").protocol
    assert protocol is not None
    matches = args.set != "seed"
    run = answered_run(protocol, TrackerConfig(), every=args.every, matches=matches)
    ids = [a.id for a in protocol.stream]
    verdicts = {position: verdict for position, _, verdict in run.verdicts}
    floor: dict[str, float] = {}
    first: dict[str, int] = {}
    wrong_after, dropped_wrong, dropped_right = 0, [], []
    for position, story, right in run.alerts:
        score = run.scores[position][0]
        later = story in first and position > first[story]
        wrong_after += int(later and not right)
        if story in floor and score <= floor[story]:
            (dropped_right if right else dropped_wrong).append(ids[position])
            continue
        if position in verdicts:
            first.setdefault(story, position)
            if verdicts[position] == "wrong-story":
                floor[story] = max(floor.get(story, 0.0), score)
    result = {
        "set": args.set,
        "person": "answers every wrong alert" if args.every else "answers each story's first",
        "wrong_after_with_feedback": wrong_after,
        "wrong_after_with_the_floor_too": wrong_after - len(dropped_wrong),
        "right_alerts": sum(1 for _, _, right in run.alerts if right),
        "right_dropped_by_the_floor": dropped_right,
        "wrong_dropped_by_the_floor": dropped_wrong,
    }
    name = f"feedback_floor_{args.set}" + ("_every" if args.every else "") + ".json"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
