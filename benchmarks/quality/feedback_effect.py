"""Does feedback lower later wrong alerts? (issue 16, item 3)

Replays the seed follow-ups (dev set) twice through one tracker, as
`storyeval.feedback` describes: as is, and with a person who answers the first wrong alert
of each story ("wrong story" or "not new", from the gold labels), applied as the service
applies it. Reports the verdicts given, the wrong alerts after each story's feedback in
both runs, and the right alerts each run made (and which the feedback run lost). With
`--every`, the person answers every wrong alert instead.

    .venv/bin/python benchmarks/quality/feedback_effect.py [--every]

`--set hamborg` (or `t17`) judges matches instead, on sets labelled with stories only: the
person answers a story's first wrong match "wrong story", and later wrong matches of that
story are counted. Writes benchmarks/results/feedback_effect_SET[_every].json. Seconds
for seed, a minute for hamborg, longer for t17 (each verdict rebuilds the tracker).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storyeval.feedback import feedback_effect  # noqa: E402
from storyeval.harness import load_set  # noqa: E402
from storyeval.report import REPO, default_data_dir  # noqa: E402
from worker.decide.tracker import TrackerConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--every", action="store_true", help="answer every wrong alert")
    parser.add_argument(
        "--set",
        default="seed",
        help="seed (alerts judged), or hamborg or t17 (matches judged: story labels only)",
    )
    args = parser.parse_args()
    protocol = load_set(args.set, args.data, REPO / "config" / "corpus").protocol
    assert protocol is not None
    matches = args.set != "seed"
    effect = feedback_effect(protocol, TrackerConfig(), every=args.every, matches=matches)
    judged = "match" if matches else "alert"
    who = "every wrong" if args.every else "each story's first wrong"
    result = {
        "set": args.set,
        "judged": f"each {judged}",
        "person": f"answers {who} {judged}",
        **dataclasses.asdict(effect),
        "wrong_fall": round(effect.wrong_fall, 3),
    }
    name = f"feedback_effect_{args.set}" + ("_every" if args.every else "") + ".json"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
