"""Where a service item's CPU goes, against the offline decide rate `burst.py` compares
the service with: the ceiling of that ratio on this machine.

The burst benchmark's first 1,000 items (Timeline17 pages served on 127.0.0.1, six
tracked stories), in this one process, without Celery or a broker:

1. **decide**: decide and learn, as `storywatch replay` does (the offline rate);
2. **fetch**: the guarded client's GET of each page;
3. **extract**: trafilatura through `extract_page`;
4. **hash**: the MinHash signature and band keys of the extracted text;
5. **pipeline**: the service's two steps on PostgreSQL, without Celery: `store_item` for
   every item (with the tick's statistics upkeep every 50 items), then `decide_item` for
   every item: everything above plus storage, the transactions, the tracker's sync and
   the outbox. Each step's CPU is reported alone (`store`, `decide_service`).

The remainder (5 minus 1-4) is the cost of being a service. With perfect use of every
core, no broker and no waiting, a service cannot decide faster than cores / pipeline CPU
per item: its ratio to the offline rate is bounded by that, whatever the task layout.
And since one process decides, it cannot decide faster than 1 / `decide_service` either:
`decider_to_offline` bounds the ratio of a burst whose decisions are the bottleneck.

    .venv/bin/python benchmarks/scale/pipeline_cost.py [--items 1000] [--skip 0] [--profile]

`--skip N` takes the stream's items after the first N (1000: the burst benchmark's second
burst, where more articles match; its stories start from the corpus alone, offline too).

Writes benchmarks/results/pipeline_cost.json. `--profile` also writes where step 5's time
goes (cProfile, cumulative) to benchmarks/results/pipeline_profile.txt; its timings are
then the profiler's, slower than unprofiled.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.scale.burst import FEEDS, SECRET, _site, write_config  # noqa: E402
from benchmarks.scale.feeds_10k import POSTGRES_URL, _database  # noqa: E402
from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import T17_ARTICLES, T17_TRACKED, _first_articles, read_jsonl  # noqa: E402
from worker import pipeline  # noqa: E402
from worker.articles.dedupe import lsh_band_keys, minhash_signature  # noqa: E402
from worker.articles.extract import extract_page  # noqa: E402
from worker.decide.tracker import Tracker  # noqa: E402
from worker.errors import ExtractionError, OriginalUndecided  # noqa: E402
from worker.models import FetchResult  # noqa: E402
from worker.settings import load_settings  # noqa: E402
from worker.stories.corpus import build_stories  # noqa: E402
from worker.stories.folder import read_corpus  # noqa: E402
from worker.text.terms import bounded_text  # noqa: E402

ANALYZE_EVERY = 50  # items between two statistics checks (the tick's, in the service)


def _ms(seconds: float, count: int) -> float:
    return round(seconds / count * 1000, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--skip", type=int, default=0, help="stream items to leave out first")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--profile", action="store_true", help="profile step 5 too")
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None

    rows = list(read_jsonl(args.data / T17_ARTICLES))
    split = _first_articles("t17", rows, T17_TRACKED, 10)
    articles = list(split.stream[args.skip : args.skip + args.items])
    scratch = Path(tempfile.mkdtemp(prefix="storywatch-cost-"))
    config = write_config(scratch, split.corpus)
    window = multiprocessing.Array("i", [0, args.items])
    site = multiprocessing.Process(target=_site, args=(articles, window), daemon=True)
    site.start()
    database = f"storywatch_bench_{uuid.uuid4().hex[:10]}"
    _database(POSTGRES_URL, database, create=True)
    os.environ.update(
        STORYWATCH_CONFIG_DIR=str(config),
        STORYWATCH_DATA_DIR=str(scratch / "var"),
        STORYWATCH_DATABASE_URL=POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}",
        STORYWATCH_ALLOW_PRIVATE_NETWORKS="true",
        STORYWATCH_LOG_LEVEL="WARNING",
        STORYWATCH_LOG_FORMAT="json",
        HOOK_URL="http://127.0.0.1:9/hook",  # nothing is delivered: no worker runs
        HOOK_SECRET=SECRET,
    )
    from worker.observe.logs import configure_logging  # noqa: PLC0415

    configure_logging("WARNING", "json")
    runtime = pipeline.open_runtime(load_settings(dotenv=False))
    try:
        pipeline.initialise(runtime)
        time.sleep(0.5)  # the page server is up

        tracker = Tracker(build_stories(read_corpus(config / "corpus")))
        started = time.process_time()
        for article in articles:
            tracker.learn(article, tracker.decide(article))
        decide = time.process_time() - started

        client = runtime.fetch_client()
        pages: list[FetchResult] = []
        started = time.process_time()
        for number in range(args.items):
            pages.append(client.get(f"http://127.0.0.1:8765/p/{number}.html", accept="text/html"))
        fetch = time.process_time() - started

        texts: list[str] = []
        started = time.process_time()
        for page in pages:
            # A page without main text: the pipeline falls back to the feed's summary.
            with contextlib.suppress(ExtractionError):
                texts.append(extract_page(page.body, url=page.url, headers=page.headers).text)
        extract = time.process_time() - started

        started = time.process_time()
        for text in texts:
            lsh_band_keys(minhash_signature(bounded_text(text)))
        hashing = time.process_time() - started

        item_ids = sorted(
            item for k in range(FEEDS) for item in pipeline.poll_feed(runtime, f"f{k}").new_item_ids
        )
        started, started_wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for count, item_id in enumerate(item_ids, start=1):
            pipeline.store_item(runtime, item_id)
            if count % ANALYZE_EVERY == 0:
                pipeline.keep_statistics(runtime)
        store = time.process_time() - started
        waiting = list(item_ids)
        while waiting:  # a copy whose original is undecided waits for it (a retry)
            later = []
            for item_id in waiting:
                try:
                    pipeline.decide_item(runtime, item_id)
                except OriginalUndecided:
                    later.append(item_id)
            waiting = later
        if profiler is not None:
            profiler.disable()
        full = time.process_time() - started
        full_wall = time.perf_counter() - started_wall
    finally:
        runtime.close()
        site.terminate()
        _database(POSTGRES_URL, database, create=False)
        shutil.rmtree(scratch, ignore_errors=True)

    n = len(item_ids)
    parts = {
        "decide": _ms(decide, len(articles)),
        "fetch": _ms(fetch, len(pages)),
        "extract": _ms(extract, len(pages)),
        "hash": _ms(hashing, max(1, len(texts))),
    }
    pipeline_ms = _ms(full, n)
    cores = os.cpu_count() or 1
    offline_rate = len(articles) / decide
    ceiling_rate = cores / (full / n)
    result: dict[str, Any] = {
        "items": n,
        "skipped": args.skip,
        "cpu_ms_per_item": {
            **parts,
            "pipeline": pipeline_ms,
            "service_remainder": round(pipeline_ms - sum(parts.values()), 2),
            "store": _ms(store, n),
            "decide_service": _ms(full - store, n),
        },
        "pipeline_wall_ms_per_item": _ms(full_wall, n),
        "offline_items_per_second": round(offline_rate, 1),
        "cores": cores,
        "ceiling_items_per_second": round(ceiling_rate, 1),
        "ceiling_service_to_offline": round(ceiling_rate / offline_rate, 3),
        "decider_to_offline": round(decide / len(articles) / ((full - store) / n), 3),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
    }
    name = "pipeline_cost.json" if not args.skip else f"pipeline_cost_skip{args.skip}.json"
    out = ROOT / "benchmarks" / "results" / name
    if profiler is not None:
        report = io.StringIO()
        profiler.dump_stats(str(out.with_name("pipeline_profile.pstats")))
        stats = pstats.Stats(profiler, stream=report)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(30)
        out.with_name("pipeline_profile.txt").write_text(report.getvalue())
        out = out.with_name("pipeline_cost_profiled.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
