"""How fast the story desk answers with 10,000 items stored (issue 16 acceptance).

1. The seed follow-ups (dev set, 105 real articles) are served from a local site and
   processed by the pipeline into a fresh database, as `storywatch run` would: developments,
   alerts, deliveries (to a receiver that refuses them, so some are dead), rehashes and
   copies.
2. The database is padded to `--items` stored items the way `process_item` stores them:
   Timeline17 texts as articles, each with its feed item; one in three counted as a
   report of a story, one in thirty a development with its alert and a delivery, dated
   over the last 30 days. (Inserted directly: processing 10,000 pages would measure the
   pipeline, not the desk.)
3. `storywatch web` serves it; each page and API twin is requested `--requests` times, one
   at a time, and the latency quantiles reported.

    .venv/bin/python benchmarks/web/desk_speed.py [--items 10000] [--requests 100]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/test] [--screenshots docs]

Target: p95 under 100 ms for each path. Writes benchmarks/results/desk_speed.json (or
desk_speed_postgres.json). With `--screenshots DIR` and Debian's chromium installed, it
also saves `desk-stories.png` and `desk-story.png` there for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import cycle, islice
from pathlib import Path

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pytest_httpserver import HTTPServer  # noqa: E402

from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import T17_ARTICLES, read_jsonl  # noqa: E402
from tests.desk_data import fill  # noqa: E402
from worker import pipeline  # noqa: E402
from worker.settings import load_settings  # noqa: E402
from worker.store.engine import transaction  # noqa: E402
from worker.store.schema import (  # noqa: E402
    Alert,
    Article,
    Delivery,
    Development,
    Item,
    StoryReport,
    StoryRow,
)
from worker.text.terms import bounded_text  # noqa: E402

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWRlbGl2ZXJpZXM="
TOKEN = "desk-speed-benchmark-token-0123456789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fill_dev(site: HTTPServer, scratch: Path, data: Path, database: str | None) -> dict[str, str]:
    """The dev set through the pipeline, as the web tests' database is made."""
    rows: list[dict[str, object]] = list(read_jsonl(data / "seed-followups" / "dev.jsonl"))
    filled = fill(scratch, site, items=rows, database_url=database, STORYWATCH_WEB_TOKEN=TOKEN)
    filled.runtime.close()
    return filled.environ


def _pad(environ: dict[str, str], items: int, data: Path) -> dict[str, int]:
    runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
    texts = list(read_jsonl(data / T17_ARTICLES))
    now = datetime.now(UTC)
    with transaction(runtime.sessions) as session:
        stories = list(session.scalars(select(StoryRow.id)).all())
        existing = session.scalar(select(func.count()).select_from(Item)) or 0
    counts = {"items": existing, "reports": 0, "developments": 0}
    for n, row in enumerate(islice(cycle(texts), max(items - existing, 0))):
        body = bounded_text(str(row.get("text") or ""))
        when = now - timedelta(minutes=(n * 4) % (30 * 24 * 60))
        with transaction(runtime.sessions) as session:
            url = f"https://bench.invalid/{n}"
            article = Article(
                canonical_url=url,
                url=url,
                title=body[:80],
                source=f"outlet{n % 40}",
                published=when,
                text=body,
                extraction="page",
                content_hash=f"{n:064d}",
                created_at=when,
            )
            session.add(article)
            session.flush()
            session.add(
                Item(
                    feed_id="wire",
                    key=f"guid:pad{n}",
                    url=url,
                    title=article.title,
                    status="done",
                    outcome="unmatched",
                    article_id=article.id,
                    created_at=when,
                    processed_at=when,
                )
            )
            counts["items"] += 1
            if n % 3 == 0:
                story = stories[n % len(stories)]
                article.story_id, article.score = story, 0.3
                session.add(StoryReport(story_id=story, article_id=article.id, published=when))
                counts["reports"] += 1
                if n % 30 == 0:
                    development = Development(
                        story_id=story,
                        article_id=article.id,
                        new_facts=[body[:200]],
                        score=0.3,
                        reasons=["padding"],
                        detected_at=when,
                    )
                    session.add(development)
                    session.flush()
                    alert = Alert(
                        id=f"pad{n:08d}",
                        development_id=development.id,
                        story_id=story,
                        content={"padding": True},
                        created_at=when,
                    )
                    session.add(alert)
                    session.add(
                        Delivery(
                            alert_id=alert.id,
                            destination_id="hook",
                            status="delivered",
                            next_attempt_at=when,
                            delivered_at=when,
                        )
                    )
                    counts["developments"] += 1
    runtime.close()
    return counts


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


@contextmanager
def _desk(environ: dict[str, str], scratch: Path) -> Iterator[tuple[str, httpx.Client]]:
    """`storywatch web` on a free port, answering."""
    port = _free_port()
    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT), "STORYWATCH_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "worker", "web", "--port", str(port)],
        env=env,
        cwd=scratch,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(200):
                try:
                    client.get("/api/stories")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield base, client
    finally:
        server.terminate()
        server.wait(timeout=30)


def _busiest(client: httpx.Client) -> str:
    stories = client.get("/api/stories").json()
    return str(max(stories, key=lambda s: s["reports"])["id"])


def _measure(client: httpx.Client, story: str, requests: int) -> dict[str, dict[str, float]]:
    paths = [
        "/",
        f"/stories/{story}",
        "/feeds",
        "/alerts",
        "/unmatched",
        "/api/stories",
        f"/api/stories/{story}",
        "/api/feeds",
        "/api/alerts",
        "/api/unmatched",
        f"/stories/{story}/feed.xml",
        "/alerts/feed.xml",
    ]
    results: dict[str, dict[str, float]] = {}
    for path in paths:
        assert client.get(path).status_code == 200, path  # warm
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            answer = client.get(path)
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200
        results[path] = {
            "p50_ms": _quantile(latencies, 0.5),
            "p95_ms": _quantile(latencies, 0.95),
            "max_ms": round(max(latencies) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
            "bytes": len(answer.content),
        }
        done = results[path]
        print(f"{path:45s} p50 {done['p50_ms']:7.1f} ms  p95 {done['p95_ms']:7.1f} ms")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--screenshots", type=Path, help="save page screenshots here")
    args = parser.parse_args()
    site = HTTPServer(host="127.0.0.1", port=0)
    site.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scratch = Path(tmp)
            environ = _fill_dev(site, scratch, args.data, args.database)
            if args.screenshots:  # of the real articles only, before the padding
                with _desk(environ, scratch) as (base, client):
                    _screenshots(base, _busiest(client), args.screenshots)
            counts = _pad(environ, args.items, args.data)
            with _desk(environ, scratch) as (base, client):
                results = _measure(client, _busiest(client), args.requests)
    finally:
        site.stop()
    worst = max(r["p95_ms"] for r in results.values())
    result = {
        "database": "postgresql" if args.database else "sqlite",
        "stored": counts,
        "requests_per_path": args.requests,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        },
        "paths": results,
        "worst_p95_ms": worst,
        "target_p95_ms": 100,
        "met": worst < 100,
    }
    name = "desk_speed_postgres.json" if args.database else "desk_speed.json"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "paths"}, indent=2))
    return 0 if worst < 100 else 1


def _screenshots(base: str, story: str, folder: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("no chromium: screenshots skipped", file=sys.stderr)
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in (("desk-stories.png", "/"), ("desk-story.png", f"/stories/{story}")):
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1100,900",
                f"--screenshot={folder.resolve() / name}",
                base + path,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


if __name__ == "__main__":
    raise SystemExit(main())
