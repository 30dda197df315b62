"""What the deciding process's memory grows with: one tracker decides and learns the
burst benchmark's Timeline17 articles (burst.py's stories and stream), by default in
three bursts of 1,000, and tracemalloc names the source lines whose allocations grew in
each. More, smaller bursts (`--bursts 9 --items 500`: the stream holds 4,565) show
whether the growth stops once the stories reach their bounds.

    .venv/bin/python benchmarks/scale/decider_memory.py [--max-known-sentences N]
        [--bursts 3] [--items 1000]

Writes benchmarks/results/decider_memory[_N][_BxI].json (the second suffix only when
the bursts are not the default): per burst, the traced growth and the lines that grew
most. A few minutes (tracemalloc slows the replay down).
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
    parser.add_argument("--bursts", type=int, default=BURSTS)
    parser.add_argument("--items", type=int, default=ITEMS, help="articles per burst")
    args = parser.parse_args()
    config = tracker_knobs(args.max_known_sentences)
    split = _first_articles("t17", list(read_jsonl(args.data / T17_ARTICLES)), T17_TRACKED, 10)
    articles = list(split.stream[: args.bursts * args.items])
    if len(articles) < args.bursts * args.items:
        parser.error(f"the stream holds {len(split.stream)} articles")
    folder = write_config(Path(tempfile.mkdtemp(prefix="storywatch-memory-")), split.corpus)
    tracker = Tracker(build_stories(read_corpus(folder / "corpus")), config)
    tracemalloc.start(1)
    gc.collect()
    before = tracemalloc.take_snapshot()
    bursts = []
    for number in range(args.bursts):
        for article in articles[number * args.items : (number + 1) * args.items]:
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
        "articles_per_burst": args.items,
        "bursts": bursts,
    }
    suffix = "" if args.max_known_sentences is None else f"_{args.max_known_sentences}"
    if (args.bursts, args.items) != (BURSTS, ITEMS):
        suffix += f"_{args.bursts}x{args.items}"
    out = ROOT / "benchmarks" / "results" / f"decider_memory{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
