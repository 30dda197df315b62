"""A burst of 1,000 new items across 20 feeds: how fast the service takes them, how soon
alerts arrive, and whether its memory stays put.

Distributed mode (PostgreSQL, Redis) and one beat, with a worker storing items (prefork,
2 processes) and one deciding them (solo pool, the decide queue alone); `--layout prefork`
runs one worker (prefork, 2 processes, every queue) instead. Against servers on
127.0.0.1: 20 feeds of 50 items each, the items' pages (Timeline17 articles rendered
with site furniture), and a signed-webhook receiver that
notes when each alert arrives. The stories are Timeline17's six tracked ones, from their
first 10 articles; the burst is the next 1,000 articles of the stream, so alerts happen.

Measured, in one run:
- items/s of the service (first poll that saw an item to the last item done) against
  the offline decide rate of the same articles in this process (decide and learn, as
  `storywatch replay`, one tracker carried across the bursts as the service's stories
  are), burst by burst, the ratio being the figure of merit. The offline rate is measured
  before the service starts and again after it stops, and the ratio taken to their mean;
- CPU seconds of each process group during each burst, and the machine's busy cores;
- alert latency: from the poll that saw the item to the receiver, p50/p95/p99, under the
  bursts and, after them, for 60 new items on an idle system;
- resident memory of every storywatch process at idle, and after each of three bursts
  (each burst new items, the feeds swapped to the next 1,000 articles).

    .venv/bin/python benchmarks/scale/burst.py [--bursts 3] [--items 1000] [--layout L]

Writes benchmarks/results/burst.json (--output).
"""

from __future__ import annotations

import argparse
import html
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.scale.feeds_10k import (  # noqa: E402
    POSTGRES_URL,
    REDIS_URL,
    _database,
    _machine_cpu,
    _tree_cpu,
)
from benchmarks.speed.decide_speed import render_page  # noqa: E402
from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import T17_ARTICLES, T17_TRACKED, _first_articles, read_jsonl  # noqa: E402
from worker.decide.replay import parse_published  # noqa: E402
from worker.decide.tracker import Tracker, TrackerConfig  # noqa: E402
from worker.models import Article  # noqa: E402
from worker.stories.corpus import build_stories  # noqa: E402
from worker.stories.folder import read_corpus  # noqa: E402

FEEDS = 20
QUIET_ITEMS = 60  # after the bursts: the latency of alerts on an idle system
QUIET_EVERY = 1.5  # seconds between two of them
SECRET = "whsec_" + "YnVyc3QtYmVuY2htYXJrLXJlY2VpdmVy"
# The worker processes of each layout (storywatch worker ...).
LAYOUTS: dict[str, tuple[tuple[str, list[str]], ...]] = {
    "decider": (
        ("worker", ["worker", "--concurrency=2", "-X", "storywatch.decide", "--hostname=w@%h"]),
        ("decider", ["worker", "--pool=solo", "-Q", "storywatch.decide", "--hostname=d@%h"]),
    ),
    "prefork": (("worker", ["worker", "--concurrency=2", "--hostname=burst@%h"]),),
    # Two deciding processes: each relearns what the other learned and waits for its
    # story locks, but neither core idles while the decide queue has a backlog.
    "deciders": (
        ("worker", ["worker", "--concurrency=2", "-X", "storywatch.decide", "--hostname=w@%h"]),
        (
            "decider",
            ["worker", "--concurrency=2", "-Q", "storywatch.decide", "--hostname=d@%h"],
        ),
    ),
}


def _site(articles: list[Article], window: Any) -> None:
    """Feeds and pages: feed k lists every 20th article of the current window (first
    article, count; a count of 0 is an empty feed). Pages are
    rendered before serving: a server slow to answer would be measured as the service."""
    pages = [render_page(a.title or "", a.text).encode() for a in articles]

    class Site(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one write, as a real server sends them: written apart, the
        # body waits for the client's delayed ACK of the headers (Nagle), 40 ms a page.
        wbufsize = 1 << 20

        def do_GET(self) -> None:
            start, items = window[0], window[1]
            if self.path.startswith("/feed/") and items == 0:  # before the first burst
                empty = b"<rss version='2.0'><channel><title>F</title></channel></rss>"
                self._send(empty, "application/rss+xml")
            elif self.path.startswith("/feed/"):
                k = int(self.path.split("/")[2].split(".")[0])
                entries = "".join(
                    f"<item><title>{html.escape(a.title or '')}</title>"
                    f"<link>http://{self.headers['Host']}/p/{n}.html</link><guid>p{n}</guid>"
                    f"<pubDate>{format_datetime(a.published or datetime.now(UTC))}</pubDate></item>"
                    for n, a in enumerate(articles[start : start + items], start=start)
                    if n % FEEDS == k
                )
                body = f"<rss version='2.0'><channel><title>F{k}</title>{entries}</channel></rss>"
                self._send(body.encode(), "application/rss+xml")
            elif self.path.startswith("/p/"):
                n = int(self.path.split("/")[2].split(".")[0])
                self._send(pages[n], "text/html; charset=utf-8")
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 8765), Site)
    server.daemon_threads = True
    server.serve_forever()


ARRIVALS: dict[str, float] = {}  # alert id -> when the receiver first got it


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        payload = json.loads(body)
        if payload.get("type") == "story.development":
            ARRIVALS.setdefault(payload["id"], time.time())
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _layout(name: str, storing: int) -> tuple[tuple[str, list[str]], ...]:
    """LAYOUTS[name] with the storing worker's processes set to `storing`."""
    return tuple(
        (
            process,
            [f"--concurrency={storing}" if a.startswith("--concurrency") else a for a in command]
            if process == "worker"
            else command,
        )
        for process, command in LAYOUTS[name]
    )


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = task / "children"
        if children.exists():
            for child in children.read_text().split():
                pids += _tree(int(child))
    return pids


def _memory(processes: dict[str, subprocess.Popen[bytes]]) -> dict[str, list[float]]:
    return {
        name: [round(_rss_mib(pid), 1) for pid in _tree(process.pid)]
        for name, process in processes.items()
    }


def _quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2) if values else 0.0


def write_config(
    scratch: Path, corpus: dict[str, list[dict[str, Any]]], poll_every: int = 10
) -> Path:
    """The service's config folder: the tracked stories' first articles as dated corpus
    files, the 20 local feeds (each polled every `poll_every` seconds), one signed-webhook
    destination (HOOK_URL, HOOK_SECRET)."""
    config = scratch / "config"
    for story, first in corpus.items():
        folder = config / "corpus" / story.lower().replace("_", "-")
        folder.mkdir(parents=True)
        for row in first:
            # Dated, so each story is known as of its corpus's last day and the stream,
            # published after it, is news (an undated corpus would know all of it).
            day = str(parse_published(row.get("published")) or "")[:10]
            head = f"Date: {day}\n\n" if len(day) == 10 else ""
            text = f"{head}{row.get('title') or ''}\n\n{row['text']}"
            name = re.sub(r"[^A-Za-z0-9._-]", "_", str(row["id"]))  # ids hold slashes
            (folder / f"{name}.txt").write_text(text)
    (config / "stories.toml").write_text("")
    (config / "destinations.toml").write_text(
        '[[destinations]]\nid = "hook"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        'secret_env = "HOOK_SECRET"\n'
    )
    (config / "feeds.toml").write_text(
        "".join(
            f'[[feeds]]\nid = "f{k}"\nurl = "http://127.0.0.1:8765/feed/{k}.xml"\n'
            f"poll_every_seconds = {poll_every}\n"
            for k in range(FEEDS)
        )
    )
    return config


def tracker_knobs(known: int | None) -> TrackerConfig:
    """The tracker's defaults, with `--max-known-sentences` when given."""
    return TrackerConfig() if known is None else TrackerConfig(max_known_sentences=known)


def _offline_rates(
    config: Path, articles: list[Article], bursts: int, items: int, known: int | None
) -> list[float]:
    """Articles per CPU second of one tracker deciding and learning the bursts' articles,
    burst by burst, as replay does (the stories grow as they learn, as the service's do)."""
    tracker = Tracker(build_stories(read_corpus(config / "corpus")), tracker_knobs(known))
    rates = []
    for number in range(bursts):
        started = time.process_time()
        for article in articles[number * items : (number + 1) * items]:
            tracker.learn(article, tracker.decide(article))
        rates.append(items / (time.process_time() - started))
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        default="decider",
        help="decider: one worker stores items (prefork, 2), one decides (solo); "
        "deciders: the same with two deciding processes (prefork, 2); "
        "prefork: one worker (prefork, 2) does everything",
    )
    parser.add_argument(
        "--poll-every",
        type=int,
        default=10,
        help="seconds between two polls of a feed: a burst is seen over this long, which "
        "a short burst's rate includes",
    )
    parser.add_argument(
        "--storing-concurrency",
        type=int,
        default=2,
        help="processes of the worker that stores items (its --concurrency)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the storing worker at this niceness (the deciding one stays at 0)",
    )
    parser.add_argument(
        "--max-known-sentences",
        type=int,
        default=None,
        help="STORYWATCH_MAX_KNOWN_SENTENCES for the service and the offline tracker "
        "(default: the service's default): a bound the stories reach within the bursts "
        "shows whether the decider's memory grows with anything but what they learn",
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "burst.json"
    )
    args = parser.parse_args()

    rows = list(read_jsonl(args.data / T17_ARTICLES))
    split = _first_articles("t17", rows, T17_TRACKED, 10)
    articles = list(split.stream[: args.items * args.bursts + QUIET_ITEMS])
    scratch = Path(tempfile.mkdtemp(prefix="storywatch-burst-"))
    config = write_config(scratch, split.corpus, args.poll_every)
    # The offline rate, in this process, before the service runs and again after it: this
    # machine's speed drifts by tens of percent over minutes, and a ratio against one
    # measurement taken minutes away inherits the drift.
    offline_before = _offline_rates(
        config, articles, args.bursts, args.items, args.max_known_sentences
    )

    window = multiprocessing.Array("i", [0, 0])
    site = multiprocessing.Process(target=_site, args=(articles, window), daemon=True)
    site.start()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    database = f"storywatch_bench_{uuid.uuid4().hex[:10]}"
    _database(POSTGRES_URL, database, create=True)
    import redis  # noqa: PLC0415
    from sqlalchemy import create_engine, text  # noqa: PLC0415

    redis.Redis.from_url(REDIS_URL).flushdb()
    database_url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYWATCH_")}
    env.update(
        STORYWATCH_CONFIG_DIR=str(config),
        STORYWATCH_DATA_DIR=str(scratch / "var"),
        STORYWATCH_DATABASE_URL=database_url,
        STORYWATCH_REDIS_URL=REDIS_URL,
        STORYWATCH_ALLOW_PRIVATE_NETWORKS="true",
        STORYWATCH_TICK_SECONDS="2",
        **(
            {"STORYWATCH_MAX_KNOWN_SENTENCES": str(args.max_known_sentences)}
            if args.max_known_sentences is not None
            else {}
        ),
        STORYWATCH_LOG_FORMAT="json",
        STORYWATCH_LOG_LEVEL="WARNING",
        STORYWATCH_METRICS_PORT="0",
        HOOK_URL=f"http://127.0.0.1:{receiver.server_address[1]}/hook",
        HOOK_SECRET=SECRET,
        PYTHONPATH=str(ROOT),
    )
    python = [sys.executable, "-m", "worker"]
    subprocess.run([*python, "init"], env=env, cwd=scratch, check=True, capture_output=True)
    engine = create_engine(database_url)

    def scalar(sql: str) -> Any:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()

    log = (scratch / "service.log").open("ab")
    layout = _layout(args.layout, args.storing_concurrency)
    processes = {
        name: subprocess.Popen(
            [
                *(["nice", "-n", str(args.nice)] if args.nice and name == "worker" else []),
                *python,
                *command,
            ],
            env=env,
            cwd=scratch,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, command in (*layout, ("beat", ["beat"]))
    }
    bursts: list[dict[str, Any]] = []
    try:
        time.sleep(30)  # started, the feeds polled once (empty), idle
        memory = {"idle": _memory(processes)}
        for number in range(args.bursts):
            cpu_before = {name: _tree_cpu(p.pid) for name, p in processes.items()}
            machine_before, wall_before = _machine_cpu(), time.monotonic()
            window[0], window[1] = number * args.items, args.items
            done_before = number * args.items
            deadline = time.time() + 900
            while time.time() < deadline:
                done = scalar("select count(*) from items where status != 'new'")
                if done >= done_before + args.items:
                    break
                time.sleep(1)
            first_seen, last_seen, last_done = (
                scalar(f"select min(created_at) from items where id > {done_before}"),
                scalar(f"select max(created_at) from items where id > {done_before}"),
                scalar(f"select max(processed_at) from items where id > {done_before}"),
            )
            # CPU from the burst's start to its last item (before the wait for deliveries):
            # which process the machine's two cores were busy with.
            cpu = {
                name: round(_tree_cpu(p.pid) - cpu_before[name], 1) for name, p in processes.items()
            }
            machine = (_machine_cpu() - machine_before) / (time.monotonic() - wall_before)
            # Rows written by one transaction share its id (xmin): how many decisions each
            # of the decider's transactions made (worker.pipeline.deciding.decide_ready).
            transactions = scalar(
                "select count(distinct xmin::text) from items"
                f" where id > {done_before} and outcome in"
                " ('development', 'rehash', 'unmatched', 'duplicate')"
            )
            decided = scalar(
                f"select count(*) from items where id > {done_before} and outcome in"
                " ('development', 'rehash', 'unmatched', 'duplicate')"
            )
            time.sleep(5)  # the last alerts' deliveries
            seconds = (last_done - first_seen).total_seconds()
            bursts.append(
                {
                    "items": args.items,
                    "seconds": round(seconds, 1),
                    "items_per_second": round(args.items / seconds, 1),
                    # The polls that saw the burst's items spread over this long (each feed
                    # due at its own moment): no service takes the burst faster.
                    "seen_over_seconds": round((last_seen - first_seen).total_seconds(), 1),
                    "service_seconds": seconds,
                    "cpu_seconds": cpu,
                    "machine_busy_cores": round(machine, 2),
                    "decisions_per_transaction": round(decided / max(transactions, 1), 2),
                }
            )
            memory[f"after_burst_{number + 1}"] = _memory(processes)
        # A quiet system: new items trickle in, one every QUIET_EVERY seconds, so each
        # poll finds one or none and nothing queues ahead of it (60 items at once would be
        # a small burst, and its latency that of the backlog).
        quiet_from = args.bursts * args.items
        window[0], window[1] = quiet_from, 0
        for count in range(1, QUIET_ITEMS + 1):
            window[1] = count
            time.sleep(QUIET_EVERY)
        deadline = time.time() + 300
        while time.time() < deadline:
            if (
                scalar("select count(*) from items where status != 'new'")
                >= quiet_from + QUIET_ITEMS
            ):
                break
            time.sleep(1)
        time.sleep(5)  # their alerts' deliveries
        with engine.connect() as connection:
            seen = {
                alert: (created.timestamp(), item_id > quiet_from)
                for alert, created, item_id in connection.execute(
                    text(
                        "select a.id, i.created_at, i.id from alerts a "
                        "join developments d on d.id = a.development_id "
                        "join items i on i.article_id = d.article_id"
                    )
                ).all()
            }
        load = os.getloadavg()
    finally:
        for process in processes.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        engine.dispose()
        site.terminate()
        receiver.shutdown()
        _database(POSTGRES_URL, database, create=False)
    offline_after = _offline_rates(
        config, articles, args.bursts, args.items, args.max_known_sentences
    )
    shutil.rmtree(scratch, ignore_errors=True)
    for burst, before, after in zip(bursts, offline_before, offline_after, strict=True):
        rate = args.items / burst.pop("service_seconds")
        offline = (before + after) / 2
        burst["offline_items_per_second"] = round(offline, 1)
        burst["offline_before_and_after"] = [round(before, 1), round(after, 1)]
        burst["service_to_offline"] = round(rate / offline, 3)
    latencies = [
        arrived - seen[alert][0]
        for alert, arrived in ARRIVALS.items()
        if alert in seen and not seen[alert][1]
    ]
    quiet = [
        arrived - seen[alert][0]
        for alert, arrived in ARRIVALS.items()
        if seen.get(alert, (0, 0))[1]
    ]
    result = {
        "machine": {"cpus": os.cpu_count(), "load_average_1_5_15": [round(v, 2) for v in load]},
        "layout": args.layout,
        "storing_worker_niceness": args.nice,
        "max_known_sentences": tracker_knobs(args.max_known_sentences).max_known_sentences,
        "workers": {name: " ".join(command) for name, command in layout},
        "beat": "ticking every 2 s",
        "feeds_polled_every_seconds": args.poll_every,
        "bursts": bursts,
        "alerts": len(latencies),
        "alert_latency_seconds": {
            "p50": _quantile(latencies, 0.5),
            "p95": _quantile(latencies, 0.95),
            "p99": _quantile(latencies, 0.99),
        },
        "quiet": {
            "items": QUIET_ITEMS,
            "one_new_item_every_seconds": QUIET_EVERY,
            "alerts": len(quiet),
            "alert_latency_p50": _quantile(quiet, 0.5),
            "alert_latency_p99": _quantile(quiet, 0.99),
            "alert_latency_max": round(max(quiet), 2) if quiet else None,
        },
        "resident_mib": memory,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
