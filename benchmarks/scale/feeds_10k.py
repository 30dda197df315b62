"""10,000 feeds answering 304, each due every minute: can one 2-core machine keep up?

Distributed mode, as it would run for real: PostgreSQL (a fresh database), Redis (one
database of it, flushed), `storywatch init`, one beat and one worker that takes the poll
queue on a thread pool, one process per core (`storywatch worker -Q storywatch.poll
--pool=threads`). A feed
server on 127.0.0.1 (HTTP/1.1, keep-alive) answers each feed's first request with a small
feed and an ETag, and 304 to every conditional request after.

Measured over `--minutes` after `--warmup` minutes, from the worker's own JSON log lines
(one per poll, with the feed, the time and the next check it scheduled):
- polls per minute;
- scheduler lag: how late each poll ran against the time the previous poll of that feed
  set for it (p50, p95, max);
- CPU seconds per minute of beat, the worker, and the whole machine (PostgreSQL, Redis and
  the feed server included), with the load average noted.

    .venv/bin/python benchmarks/scale/feeds_10k.py [--feeds 10000] [--minutes 3]

Needs Redis on STORYWATCH_BENCH_REDIS_URL (default redis://127.0.0.1:6379/7) and
PostgreSQL on STORYWATCH_BENCH_POSTGRES_URL (default the test server). Writes
benchmarks/results/feeds_10k.json.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("STORYWATCH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
POSTGRES_URL = os.environ.get(
    "STORYWATCH_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
POLL_EVENTS = {"feed.not_modified", "feed.unchanged", "feed.polled"}
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title>'
    b"<item><title>Nothing new</title><link>http://127.0.0.1/a</link><guid>a</guid></item>"
    b"</channel></rss>"
)


class _Feeds(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the worker's pool reuses its connections

    def do_GET(self) -> None:
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(port: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Feeds)
    server.daemon_threads = True
    port.value = server.server_address[1]
    server.serve_forever()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children that have been waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU of a process and its live descendants (a prefork pool's children)."""
    total = _cpu_seconds(pid)
    for child in Path(f"/proc/{pid}/task").iterdir():
        children = child / "children"
        if children.exists():
            for grandchild in children.read_text().split():
                with contextlib.suppress(FileNotFoundError):  # it exited meanwhile
                    total += _tree_cpu(int(grandchild))
    return total


def _workers_cpu(workers: list[subprocess.Popen[bytes]]) -> float:
    return sum(_tree_cpu(worker.pid) for worker in workers)


def _machine_cpu() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # not idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _database(admin_url: str, name: str, create: bool) -> None:
    from sqlalchemy import create_engine, text  # noqa: PLC0415

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if create:
            connection.execute(text(f'create database "{name}"'))
        else:
            connection.execute(text(f'drop database if exists "{name}" with (force)'))
    engine.dispose()


def _polls(log: Path) -> list[tuple[str, float, float]]:
    """(feed, unix time, next check in seconds) of every poll the worker logged."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{") or '"feed.' not in line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # not expected since one write makes one line (worker.observe.logs)
        if event.get("event") in POLL_EVENTS and event.get("next_check_in") is not None:
            moment = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
            found.append((event["feed_id"], moment.timestamp(), float(event["next_check_in"])))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=16, help="threads per poll worker")
    parser.add_argument("--processes", type=int, default=2, help="poll workers (one per core)")
    args = parser.parse_args()

    port = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    while not port.value:
        time.sleep(0.05)
    scratch = Path(tempfile.mkdtemp(prefix="storywatch-feeds-"))
    config = scratch / "config"
    config.mkdir()
    shutil.copytree(ROOT / "config" / "corpus", config / "corpus")
    (config / "destinations.toml").write_text("")
    (config / "stories.toml").write_text("")
    (config / "feeds.toml").write_text(
        "".join(
            f'[[feeds]]\nid = "f{n}"\nurl = "http://127.0.0.1:{port.value}/f/{n}.xml"\n'
            "poll_every_seconds = 60\n"
            for n in range(args.feeds)
        )
    )
    database = f"storywatch_bench_{uuid.uuid4().hex[:10]}"
    _database(POSTGRES_URL, database, create=True)
    import redis  # noqa: PLC0415

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYWATCH_")}
    env.update(
        STORYWATCH_CONFIG_DIR=str(config),
        STORYWATCH_DATA_DIR=str(scratch / "var"),
        STORYWATCH_DATABASE_URL=POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}",
        STORYWATCH_REDIS_URL=REDIS_URL,
        STORYWATCH_ALLOW_PRIVATE_NETWORKS="true",
        STORYWATCH_TICK_SECONDS="5",
        STORYWATCH_LOG_FORMAT="json",
        STORYWATCH_METRICS_PORT="0",
        PYTHONPATH=str(ROOT),
    )
    python = [sys.executable, "-m", "worker"]
    subprocess.run([*python, "init"], env=env, cwd=scratch, check=True, capture_output=True)
    log = scratch / "worker.log"
    with log.open("ab") as out, (scratch / "beat.log").open("ab") as beat_out:
        workers = [
            subprocess.Popen(
                [
                    *python,
                    "worker",
                    "-Q",
                    "storywatch.poll",
                    "--pool=threads",
                    f"--concurrency={args.threads}",
                    f"--hostname=poll{number}@%h",
                ],
                env=env,
                cwd=scratch,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for number in range(args.processes)
        ]
        beat = subprocess.Popen(
            [*python, "beat"],
            env=env,
            cwd=scratch,
            stdout=beat_out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            time.sleep(args.warmup * 60)
            started = time.time()
            cpu_before = (_workers_cpu(workers), _tree_cpu(beat.pid), _machine_cpu())
            time.sleep(args.minutes * 60)
            ended = time.time()
            cpu_after = (_workers_cpu(workers), _tree_cpu(beat.pid), _machine_cpu())
            load = os.getloadavg()
        finally:
            for process in (*workers, beat):
                os.killpg(process.pid, signal.SIGTERM)
            for process in (*workers, beat):
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            server.terminate()
            _database(POSTGRES_URL, database, create=False)
    polls = sorted(_polls(log), key=lambda poll: (poll[0], poll[1]))
    shutil.rmtree(scratch, ignore_errors=True)
    in_window = [p for p in polls if started <= p[1] < ended]
    lags = [
        max(0.0, now - (then + delay))
        for (feed, then, delay), (same, now, _) in itertools.pairwise(polls)
        if feed == same and started <= now < ended
    ]
    lags.sort()
    minutes = (ended - started) / 60
    per_minute = [
        (after - before) / minutes for before, after in zip(cpu_before, cpu_after, strict=True)
    ]

    def quantile(share: float) -> float:
        return round(lags[min(len(lags) - 1, int(share * len(lags)))], 2) if lags else 0.0

    result = {
        "feeds": args.feeds,
        "poll_every_seconds": 60,
        "window_minutes": round(minutes, 2),
        "warmup_minutes": args.warmup,
        "workers": f"{args.processes} x storywatch worker -Q storywatch.poll --pool=threads"
        f" --concurrency={args.threads}",
        "polls_per_minute": round(len(in_window) / minutes),
        # Each feed is due 60 s after its last poll plus up to 10% (polls spread out, not
        # in lockstep): keeping up exactly makes feeds x 60 / 63 polls a minute.
        "polls_per_minute_on_schedule": round(args.feeds * 60 / 63),
        "share_of_schedule": round(len(in_window) / minutes / (args.feeds * 60 / 63), 3),
        "lag_seconds": {
            "p50": quantile(0.5),
            "p95": quantile(0.95),
            "max": round(lags[-1], 2) if lags else 0.0,
            "mean": round(statistics.fmean(lags), 2) if lags else 0.0,
        },
        "cpu_seconds_per_minute": {
            "worker": round(per_minute[0], 1),
            "beat": round(per_minute[1], 1),
            "machine": round(per_minute[2], 1),
            "machine_capacity": 60 * (os.cpu_count() or 1),
        },
        "load_average_1_5_15": [round(value, 2) for value in load],
    }
    out_path = ROOT / "benchmarks" / "results" / "feeds_10k.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
