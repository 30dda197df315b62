"""Quality of story intelligence on the seed follow-ups (DESIGN §5).

Builds stories from config/corpus, replays seed-followups/dev.jsonl in file order exactly
as `storywatch replay` does, and prints tracking and development precision/recall/F1.
Writes the numbers and the per-item decisions to benchmarks/results/seed_followups.json.

    .venv/bin/python benchmarks/quality/seed_followups.py [--data PATH] [--corpus DIR] [-v]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker.corpus import build_stories  # noqa: E402
from worker.evaluation import (  # noqa: E402
    GoldItem,
    SystemItem,
    development_scores,
    map_stories,
    tracking_scores,
)
from worker.models import CorpusDocument  # noqa: E402
from worker.replay import read_articles, replay  # noqa: E402
from worker.tracker import Tracker  # noqa: E402


def default_data() -> Path:
    base = os.environ.get("STORYWATCH_DATA")
    root = Path(base) if base else ROOT.parent / "shared" / "data"
    return root / "seed-followups" / "dev.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--corpus", type=Path, default=ROOT / "config" / "corpus")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "seed_followups.json"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every decision")
    args = parser.parse_args()

    documents = [
        CorpusDocument(name=path.name, text=path.read_text(encoding="utf-8"))
        for path in sorted(args.corpus.glob("*.txt"))
    ]
    rows = [
        json.loads(line)
        for line in args.data.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    started = time.perf_counter()
    stories = build_stories(documents)
    tracker = Tracker(stories)
    outputs = list(replay(tracker, read_articles(rows)))
    elapsed = time.perf_counter() - started

    gold = [
        GoldItem(r["id"], r.get("story"), r["label"], tuple(r.get("developments") or ()))
        for r in rows
    ]
    system = [SystemItem(o["id"], o["story"], bool(o["new_development"])) for o in outputs]
    mapping = map_stories(system, gold)
    tracking = tracking_scores(system, gold)
    development = development_scores(system, gold, mapping)

    if args.verbose:
        for row, out in zip(rows, outputs, strict=True):
            gold_story = row.get("story")
            mapped = mapping.get(out["story"]) if out["story"] else None
            mark = "ok " if mapped == gold_story else "BAD"
            flag = "NEW" if out["new_development"] else "   "
            print(
                f"{mark} {row['id']} gold={gold_story}/{row['label']}"
                f"{row.get('developments') or ''}"
                f" sys={out['story']} {out['score']:.2f} {flag}"
            )
            for fact in out["new_facts"]:
                print(f"        + {fact[:140]}")
    print(f"stories: {len(stories)}  items: {len(rows)}  replay: {elapsed:.2f}s")
    print(f"tracking    P={tracking.precision:.3f} R={tracking.recall:.3f} F1={tracking.f1:.3f}")
    print(
        f"development P={development.precision:.3f} R={development.recall:.3f}"
        f" F1={development.f1:.3f}"
        f"  (alerts {development.predicted}, right {development.correct},"
        f" developments {development.relevant})"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "data": str(args.data),
                "stories": [s.id for s in stories],
                "mapping": mapping,
                "tracking": asdict(tracking),
                "development": asdict(development),
                "seconds": round(elapsed, 3),
                "decisions": outputs,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
