"""Database size per 10,000 items, before and after retention (issue 15, item 4).

Fills a fresh SQLite database the way `process_item` stores what it reads: one feed item
and one article per real Timeline17 text (bounded as the service bounds it), with its
fingerprint, MinHash signature and LSH bands. Then runs `pipeline.prune` as the daily
task would 100 days later, and measures the file after VACUUM each time.

    .venv/bin/python benchmarks/scale/storage.py [--items 10000] [--data DIR]

Writes benchmarks/results/storage.json.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from datetime import timedelta
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import T17_ARTICLES, read_jsonl  # noqa: E402
from worker import pipeline  # noqa: E402
from worker.articles.dedupe import (  # noqa: E402
    lsh_band_keys,
    minhash_signature,
    signature_to_bytes,
    text_fingerprint,
)
from worker.settings import load_settings  # noqa: E402
from worker.store import articles  # noqa: E402
from worker.store.engine import transaction  # noqa: E402
from worker.store.schema import Feed, Item  # noqa: E402
from worker.text.terms import bounded_text  # noqa: E402


def size_mib(runtime: pipeline.Runtime, path: Path) -> float:
    """The database file's size once VACUUM has given back the free pages."""
    runtime.engine.dispose()  # every pooled connection closed: VACUUM needs the file alone
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("VACUUM")
    finally:
        connection.close()
    return round(path.stat().st_size / 2**20, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    args = parser.parse_args()
    rows = list(read_jsonl(args.data / T17_ARTICLES))
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "config"
        (config / "corpus").mkdir(parents=True)
        for name in ("feeds.toml", "destinations.toml", "stories.toml"):
            (config / name).write_text("")
        (config / "corpus" / "one.txt").write_text(
            "Investigators examined the wreckage of the airliner near the coast.\n"
        )
        settings = load_settings(
            {"STORYWATCH_CONFIG_DIR": str(config), "STORYWATCH_DATA_DIR": scratch},
            dotenv=False,
        )
        runtime = pipeline.open_runtime(settings)
        pipeline.initialise(runtime)
        with transaction(runtime.sessions) as session:
            session.add(Feed(id="bench", url="https://bench.invalid/rss"))
        for n, row in enumerate(islice(cycle(rows), args.items)):
            body = bounded_text(str(row.get("text") or ""))
            signature = minhash_signature(body)
            with transaction(runtime.sessions) as session:
                url = f"https://bench.invalid/{n}"
                stored = articles.add(
                    session,
                    canonical_url=url,
                    url=url,
                    title=row.get("title"),
                    source="bench",
                    text=body,
                    extraction="page",
                    content_hash=text_fingerprint(body + str(n)),
                    signature=signature_to_bytes(signature),
                )
                articles.add_bands(session, stored.id, lsh_band_keys(signature))
                session.add(
                    Item(
                        feed_id="bench",
                        key=f"guid:{n}",
                        url=url,
                        title=row.get("title"),
                        summary=body[:300],
                        status="done",
                        outcome="unmatched",
                        article_id=stored.id,
                    )
                )
        database = Path(scratch) / "storywatch.db"
        before = size_mib(runtime, database)
        start = runtime.clock()
        runtime.clock = lambda: start + timedelta(days=100)
        summary = pipeline.prune(runtime)
        after = size_mib(runtime, database)
        runtime.close()
    per = 10_000 / args.items
    result = {
        "items": args.items,
        "source": "Timeline17 article texts, cycled; stored as process_item stores them",
        "mib_before": before,
        "mib_after_prune": after,
        "mib_per_10000_items_before": round(before * per, 2),
        "mib_per_10000_items_after": round(after * per, 2),
        "pruned": {
            "items": summary.items,
            "articles_trimmed": summary.articles_trimmed,
            "deliveries": summary.deliveries,
        },
    }
    out = ROOT / "benchmarks" / "results" / "storage.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
