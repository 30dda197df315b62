"""What the deciding process's memory grows with: one tracker decides and learns the
burst benchmark's 3,000 Timeline17 articles (burst.py's stories and stream), in three
bursts of 1,000, and tracemalloc names the source lines whose allocations grew in each.

    .venv/bin/python benchmarks/scale/decider_memory.py [--max-known-sentences N]

Writes benchmarks/results/decider_memory[_N].json: per burst, the traced growth and
the lines that grew most. A few minutes (tracemalloc slows the replay down).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.scale.burst import tracker_knobs, write_config  # noqa: E402
from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import T17_ARTICLES, T17_TRACKED, _first_articles, read_jsonl  # noqa: E402
from worker.decide.tracker import Tracker  # noqa: E402
from worker.stories.corpus import build_stories  # noqa: E402
from worker.stories.folder import read_corpus  # noqa: E402

BURSTS = 3
ITEMS = 1_000
TOP = 12


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename
    for prefix in (str(ROOT) + "/", ".venv/lib/python3.11/site-packages/"):
        name = name.split(prefix, 1)[-1]
    return f"{name}:{frame.lineno}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--max-known-sentences", type=int, default=None)
    args = parser.parse_args()
    config = tracker_knobs(args.max_known_sentences)
    split = _first_articles("t17", list(read_jsonl(args.data / T17_ARTICLES)), T17_TRACKED, 10)
    articles = list(split.stream[: BURSTS * ITEMS])
    folder = write_config(Path(tempfile.mkdtemp(prefix="storywatch-memory-")), split.corpus)
    tracker = Tracker(build_stories(read_corpus(folder / "corpus")), config)
    tracemalloc.start(1)
    gc.collect()
    before = tracemalloc.take_snapshot()
    bursts = []
    for number in range(BURSTS):
        for article in articles[number * ITEMS : (number + 1) * ITEMS]:
            tracker.learn(article, tracker.decide(article))
        gc.collect()
        after = tracemalloc.take_snapshot()
        grown = after.compare_to(before, "lineno")
        bursts.append(
            {
                "burst": number + 1,
                "traced_growth_mib": round(sum(s.size_diff for s in grown) / 2**20, 1),
                "lines": [
                    {"line": _where(s.traceback[0]), "mib": round(s.size_diff / 2**20, 2)}
                    for s in grown[:TOP]
                ],
            }
        )
        before = after
    result = {
        "max_known_sentences": config.max_known_sentences,
        "articles_per_burst": ITEMS,
        "bursts": bursts,
    }
    suffix = "" if args.max_known_sentences is None else f"_{args.max_known_sentences}"
    out = ROOT / "benchmarks" / "results" / f"decider_memory{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
