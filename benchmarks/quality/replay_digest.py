"""One digest per labelled set of what the tracker decides: the check that a change which
should not change behaviour (a move, a split, a rename) did not.

Replays each set's protocol exactly as `storywatch eval` does and prints the SHA-256 of
its decisions (one JSON line per article: story, score, alert, quoted facts), and writes
the lines themselves next to `--output` for a diff. Run it at two commits and compare:

    .venv/bin/python benchmarks/quality/replay_digest.py --output /tmp/before
    git checkout OTHER && .venv/bin/python benchmarks/quality/replay_digest.py --output /tmp/after
    diff -r /tmp/before /tmp/after

Scores are sums over sets of terms, whose order Python randomises per process, so their
last digit can differ between two runs of the same code: the script pins PYTHONHASHSEED
(re-running itself when it is not set) so that equal code gives equal bytes.
About 4 minutes for all sets on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SETS = ("seed", "hamborg", "t17", "t17-one-folder")


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        return subprocess.call([sys.executable, *sys.argv], env=env)

    from storyeval.harness import load_set  # noqa: PLC0415
    from storyeval.report import REPO, default_data_dir  # noqa: PLC0415
    from worker.decide.replay import replay  # noqa: PLC0415
    from worker.decide.tracker import Tracker, TrackerConfig  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--corpus", type=Path, default=REPO / "config" / "corpus")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--output", type=Path, required=True, help="folder for the decisions")
    args = parser.parse_args()

    args.output.mkdir(parents=True, exist_ok=True)
    for name in args.sets.split(","):
        protocol = load_set(name, args.data, args.corpus).protocol
        assert protocol is not None, f"{name} is not a tracking set"
        lines = [
            json.dumps(decision, sort_keys=True, default=str) + "\n"
            for decision in replay(Tracker(protocol.stories, TrackerConfig()), protocol.stream)
        ]
        data = "".join(lines).encode("utf-8")
        (args.output / f"{name}.jsonl").write_bytes(data)
        print(f"{name:16s} {len(lines):5d} decisions  sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
