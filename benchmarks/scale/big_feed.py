"""What one huge feed costs the poller (issue 15, item 1): a feed of 50,000 small dated
items, served on 127.0.0.1, polled by `pipeline.poll_feed` until every item is taken,
with the workers taken to keep up (each check, the items it handed out are marked done).

Reports the checks, the fetches (requests the server answered), and the CPU seconds the
polls spent, in total and per check that fetched. `--max-checks N` stops early (the
release before this one fetched and parsed the whole feed on every check, 500 of them).

    .venv/bin/python benchmarks/scale/big_feed.py [--items 50000] [--max-checks N]

Writes benchmarks/results/big_feed.json (or `--output`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import update  # noqa: E402

from worker import pipeline  # noqa: E402
from worker.settings import load_settings  # noqa: E402
from worker.store.engine import transaction  # noqa: E402
from worker.store.schema import Item  # noqa: E402


def _feed(items: int, base: str) -> bytes:
    newest = datetime(2026, 12, 1, tzinfo=UTC)
    entries = "".join(
        f"<item><title>Item {n}</title><link>{base}/a/{n}</link><guid>g{n}</guid>"
        f"<pubDate>{format_datetime(newest - timedelta(minutes=n))}</pubDate>"
        f"<description>Short summary of item {n}.</description></item>"
        for n in range(items)
    )
    return f"<rss version='2.0'><channel><title>Big</title>{entries}</channel></rss>".encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--max-checks", type=int, default=1_000)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/big_feed.json")
    args = parser.parse_args()
    fetches = [0]
    body: list[bytes] = []

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches[0] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", str(len(body[0])))
            self.end_headers()
            self.wfile.write(body[0])

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    body.append(_feed(args.items, base))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scratch = Path(tempfile.mkdtemp(prefix="storywatch-big-feed-"))
    config = scratch / "config"
    (config / "corpus").mkdir(parents=True)
    (config / "corpus" / "story.txt").write_text(
        "A ferry sank off the coast on Tuesday; forty people were rescued.\n", encoding="utf-8"
    )
    (config / "feeds.toml").write_text(
        f'[[feeds]]\nid = "big"\nurl = "{base}/feed.xml"\npoll_every_seconds = 60\n',
        encoding="utf-8",
    )
    settings = load_settings(
        {
            "STORYWATCH_CONFIG_DIR": str(config),
            "STORYWATCH_DATA_DIR": str(scratch / "var"),
            "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
            "STORYWATCH_MAX_RESPONSE_BYTES": str(max(len(body[0]) * 2, 10_000)),
        },
        dotenv=False,
    )
    runtime = pipeline.open_runtime(settings)
    pipeline.initialise(runtime)
    taken = checks = 0
    fetch_cpu: list[float] = []
    started_cpu, started = time.process_time(), time.monotonic()
    try:
        while taken < args.items and checks < args.max_checks:
            before_fetches, before_cpu = fetches[0], time.process_time()
            summary = pipeline.poll_feed(runtime, "big")
            if fetches[0] > before_fetches:
                fetch_cpu.append(time.process_time() - before_cpu)
            checks += 1
            taken += len(summary.new_item_ids)
            with transaction(runtime.sessions) as session:  # the workers kept up
                session.execute(update(Item).where(Item.status == "new").values(status="done"))
    finally:
        runtime.close()
        server.shutdown()
    result = {
        "items_in_feed": args.items,
        "feed_bytes": len(body[0]),
        "items_taken": taken,
        "checks": checks,
        "fetches": fetches[0],
        "poll_cpu_seconds": round(time.process_time() - started_cpu, 1),
        "wall_seconds": round(time.monotonic() - started, 1),
        "cpu_seconds_per_fetch": round(sum(fetch_cpu) / len(fetch_cpu), 2) if fetch_cpu else None,
        "finished": taken >= args.items,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
