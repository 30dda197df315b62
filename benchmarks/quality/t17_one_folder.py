"""Timeline17 given as a user gives a corpus: 60 documents in one folder (issue 13, item 3).

`t17_protocol` hands the tracker six stories, each built from its first 10 articles. Here
the same 60 documents go to `build_stories` as one corpus, so the automatic grouping
decides what the stories are; the stream and gold are the same, and system stories are
mapped to gold stories by majority vote. The gap between the two tracking F1s is what
the grouping costs.

Prints each built story (id, documents, the gold stories those documents come from, and
where its stream matches went) and tracking precision/recall/F1:

    .venv/bin/python benchmarks/quality/t17_one_folder.py [--data DIR] [--stride N]

Writes benchmarks/results/t17_one_folder.json. About 4 minutes for the full stream.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storyeval.metrics import SystemItem, map_stories, tracking_scores  # noqa: E402
from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import (  # noqa: E402
    T17_ARTICLES,
    read_jsonl,
    subsample,
    t17_one_folder_protocol,
)
from worker.decide.replay import replay  # noqa: E402
from worker.decide.tracker import Tracker, TrackerConfig  # noqa: E402


def _short(counter: Counter[str | None]) -> str:
    return ", ".join(f"{story or 'off'}:{n}" for story, n in counter.most_common())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--stride", type=int, default=1, help="replay every N-th article")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "t17_one_folder.json"
    )
    args = parser.parse_args()

    protocol = subsample(t17_one_folder_protocol(args.data), args.stride)
    gold_of = {str(r["id"]): str(r["story"]) for r in read_jsonl(args.data / T17_ARTICLES)}
    outputs = list(replay(Tracker(protocol.stories, TrackerConfig()), protocol.stream))
    system = [SystemItem(o["id"], o["story"], bool(o["new_development"])) for o in outputs]
    mapping = map_stories(system, list(protocol.gold))
    tracking = tracking_scores(system, list(protocol.gold), mapping)

    matched: dict[str, Counter[str | None]] = defaultdict(Counter)
    for item, gold in zip(system, protocol.gold, strict=True):
        if item.story is not None:
            matched[item.story][gold.story] += 1
    print(f"Timeline17, one folder (stride {args.stride}): {len(protocol.stories)} stories")
    rows = []
    for story in protocol.stories:
        sources: Counter[str | None] = Counter(gold_of.get(d) for d in story.documents)
        rows.append(
            {
                "id": story.id,
                "documents": len(story.documents),
                "document_gold": dict(sources),
                "mapped_to": mapping.get(story.id),
                "matches": {str(k): v for k, v in matched[story.id].items()},
            }
        )
        print(
            f"  {story.id:40s} docs={len(story.documents):2d} [{_short(sources)}]"
            f" -> {mapping.get(story.id) or '-'}; matches [{_short(matched[story.id])}]"
        )
    print(f"tracking P={tracking.precision:.3f} R={tracking.recall:.3f} F1={tracking.f1:.3f}")
    payload = {
        "set": "t17-one-folder",
        "stride": args.stride,
        "tracking": dataclasses.asdict(tracking),
        "stories": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
