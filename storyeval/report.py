"""Reporting for `storywatch eval`: the table, the JSON results and the threshold plots.

What this module is for: running the chosen sets (`run_evaluation`, the one entry point
of the CLI and of benchmarks/quality) and turning `storyeval.sweep.SetResult`s into one
table (one row per set and metric, with the issue's target and baseline and an honest
met/missed), the JSON files kept in `benchmarks/results/` (`quality.json` plus one file
per set), and PNG plots of precision and recall against the swept decision thresholds
(matplotlib with the Agg backend, imported only when plots are asked for: it is the
optional `eval` extra).

What it must not do: score anything itself (`storyeval.metrics` does), give any set a
configuration of its own, or hide a missed target.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from storyeval.harness import RESULT_FILES, Metric, set_available
from storyeval.sweep import SWEEP_KNOBS, SetResult, run_set
from worker.decide.tracker import TrackerConfig

# T17 replay speed target of issue 3: the whole stream in under five minutes.
REPLAY_SECONDS_TARGET = 300.0


@dataclass(frozen=True, slots=True)
class Target:
    """Minimum numbers a release aims at (None: no target on that number)."""

    precision: float | None = None
    recall: float | None = None
    f1: float | None = None

    def met(self, metric: Metric) -> bool:
        return all(
            value is None or actual >= value
            for value, actual in (
                (self.precision, metric.precision),
                (self.recall, metric.recall),
                (self.f1, metric.f1),
            )
        )

    def describe(self) -> str:
        parts = [
            f"{name}>={value:.2f}"
            for name, value in (("P", self.precision), ("R", self.recall), ("F1", self.f1))
            if value is not None
        ]
        return " ".join(parts)


# Issue 13's targets (the cross-validated seed numbers within 0.05 of the full-set ones),
# plain TF-IDF baselines, and the published T17 context.
TARGETS = {
    ("seed", "tracking"): Target(f1=0.95),
    ("seed", "development"): Target(precision=0.85, recall=0.85),
    ("seed", "tracking (LOSO CV)"): Target(f1=0.90),
    ("seed", "development (LOSO CV)"): Target(precision=0.80, recall=0.80),
    ("t17", "tracking"): Target(f1=0.92),
    ("t17", "alert_dates"): Target(f1=0.60),
    ("t17-one-folder", "tracking"): Target(f1=0.85),
}
BASELINES = {
    ("seed", "tracking"): "F1 0.76",
    ("seed", "development"): "F1 0.52 (P 0.40)",
    ("t17", "tracking"): "F1 0.49 (P 0.90 R 0.34)",
    ("t17", "alert_dates"): "F1 0.53; published offline 0.54",
}


@dataclass(frozen=True, slots=True)
class Row:
    set: str
    metric: str
    precision: float | None
    recall: float | None
    value: float | None  # F1, or the metric's own number (seconds, hours, items/s)
    unit: str  # "F1", "s", "h", "items/s"
    target: str
    baseline: str
    status: str  # met | MISSED | -


def rows_for(result: SetResult) -> list[Row]:
    rows: list[Row] = []
    evaluation = result.evaluation
    for name, metric in evaluation.metrics.items():
        target = TARGETS.get((result.name, name))
        status = "-" if target is None else ("met" if target.met(metric) else "MISSED")
        rows.append(
            Row(
                result.name,
                name,
                metric.precision,
                metric.recall,
                metric.f1,
                "F1",
                target.describe() if target else "",
                BASELINES.get((result.name, name), ""),
                status,
            )
        )
    if result.name == "trec":
        latency = evaluation.details.get("median_latency_hours")
        rows.append(Row("trec", "latency (median)", None, None, latency, "h", "", "", "-"))
    speed = evaluation.items / evaluation.seconds if evaluation.seconds else 0.0
    is_t17 = result.name == "t17"
    rows.append(
        Row(
            result.name,
            "replay time",
            None,
            None,
            evaluation.seconds,
            "s",
            f"<{REPLAY_SECONDS_TARGET:.0f} s" if is_t17 else "",
            "",
            ("met" if evaluation.seconds < REPLAY_SECONDS_TARGET else "MISSED") if is_t17 else "-",
        )
    )
    cpu = evaluation.cpu_seconds
    rows.append(Row(result.name, "replay cpu", None, None, cpu, "s", "", "", "-"))
    rows.append(Row(result.name, "speed", None, None, round(speed, 1), "items/s", "", "", "-"))
    return rows


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(rows: Sequence[Row]) -> str:
    header = ("set", "metric", "P", "R", "F1/value", "target", "baseline", "status")
    body = [
        (
            r.set,
            r.metric,
            _cell(r.precision),
            _cell(r.recall),
            _cell(r.value) if r.unit == "F1" else f"{_cell(r.value, 1)} {r.unit}",
            r.target or "-",
            r.baseline or "-",
            r.status,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _sweep_json(result: SetResult) -> dict[str, Any]:
    return {
        "sample": result.sweep_note,
        "skipped_knobs": list(result.skipped_knobs),
        "points": [
            {
                "knob": p.knob,
                "value": p.value,
                "default": p.is_default,
                "metrics": {k: dataclasses.asdict(m) for k, m in p.metrics.items()},
            }
            for p in result.sweep
        ],
    }


def write_results(
    results: Sequence[SetResult],
    rows: Sequence[Row],
    output_dir: Path,
    *,
    data_dir: Path,
    config: TrackerConfig,
    skipped_sets: Sequence[str] = (),
) -> list[Path]:
    """quality.json (table, summary, config) and one detailed file per set."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    summary: dict[str, Any] = {}
    for result in results:
        evaluation = result.evaluation
        per_set = {
            "set": result.name,
            "data": str(data_dir),
            "metrics": {k: dataclasses.asdict(m) for k, m in evaluation.metrics.items()},
            "seconds": evaluation.seconds,
            "cpu_seconds": evaluation.cpu_seconds,
            "items": evaluation.items,
            **evaluation.details,
            "sweep": _sweep_json(result),
        }
        path = output_dir / RESULT_FILES[result.name]
        _dump(path, per_set)
        written.append(path)
        summary[result.name] = {
            "metrics": per_set["metrics"],
            "seconds": evaluation.seconds,
            "cpu_seconds": evaluation.cpu_seconds,
            "items": evaluation.items,
            "file": path.name,
        }
    quality = {
        "command": "storywatch eval",
        "data": str(data_dir),
        "config": dataclasses.asdict(config),
        "table": [dataclasses.asdict(r) for r in rows],
        "sets": summary,
        "skipped_sets": list(skipped_sets),
    }
    path = output_dir / "quality.json"
    _dump(path, quality)
    written.append(path)
    return written


def _dump(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def plotting_available() -> bool:
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def plot_sweep(result: SetResult, path: Path) -> Path | None:
    """One PNG per set: P (solid) and R (dashed) of each metric against each knob."""
    if not result.sweep:
        return None
    import matplotlib  # noqa: PLC0415 - optional extra, loaded only for plots

    matplotlib.use("Agg")  # no display here: render straight to files
    import matplotlib.pyplot as plt  # noqa: PLC0415

    knobs = [".".join(k) for k in SWEEP_KNOBS if ".".join(k) not in result.skipped_knobs]
    figure, axes = plt.subplots(1, len(knobs), figsize=(6 * len(knobs), 4.5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, knob in zip(axes[0], knobs, strict=True):
        points = sorted((p for p in result.sweep if p.knob == knob), key=lambda p: p.value)
        values = [p.value for p in points]
        names = sorted({m for p in points for m in p.metrics})
        for number, name in enumerate(names):
            colour = colours[number % len(colours)]
            for attribute, style in (("precision", "-"), ("recall", "--")):
                series = [getattr(p.metrics[name], attribute) for p in points]
                axis.plot(
                    values,
                    series,
                    style,
                    marker="o",
                    color=colour,
                    label=f"{name} {attribute[0].upper()}",
                )
        default = next((p.value for p in points if p.is_default), None)
        if default is not None:
            axis.axvline(default, color="grey", linestyle=":", label=f"default {default:g}")
        axis.set_xlabel(knob)
        axis.set_ylim(0.0, 1.02)
        axis.set_ylabel("precision / recall")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")
    figure.suptitle(
        f"{result.name}: precision (solid) and recall (dashed) vs thresholds\n"
        f"sweep on {result.sweep_note}",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


# ---------------------------------------------------------------------------------------
# The whole run, as `storywatch eval` and benchmarks/quality call it

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """$STORYWATCH_EVAL_DATA, else ../shared/data next to the repository."""
    configured = os.environ.get("STORYWATCH_EVAL_DATA")
    return Path(configured) if configured else REPO.parent / "shared" / "data"


def run_evaluation(
    data_dir: Path,
    corpus_dir: Path,
    sets: Sequence[str],
    output_dir: Path,
    *,
    plots: bool,
    jobs: int,
    out: TextIO,
    config: TrackerConfig | None = None,
) -> list[SetResult]:
    """Run the sets in order with one configuration (default: the default one); print,
    write JSON and plots."""
    config = config or TrackerConfig()
    results: list[SetResult] = []
    skipped: list[str] = []
    for name in sets:
        if not set_available(name, data_dir):
            print(f"{name}: no data under {data_dir}, skipped", file=out)
            skipped.append(name)
            continue
        started = time.perf_counter()
        result = run_set(name, data_dir, corpus_dir, config=config, with_sweep=plots, jobs=jobs)
        total = time.perf_counter() - started
        print(
            f"{name}: {result.evaluation.items} items, replay {result.evaluation.seconds:.1f} s,"
            f" with loading and sweep {total:.1f} s",
            file=out,
            flush=True,
        )
        results.append(result)
    rows = [row for result in results for row in rows_for(result)]
    print("\n" + format_table(rows), file=out)
    written = write_results(
        results, rows, output_dir, data_dir=data_dir, config=config, skipped_sets=skipped
    )
    if plots:
        for result in results:
            path = plot_sweep(result, output_dir / "plots" / f"{result.name}.png")
            if path is not None:
                written.append(path)
    print("\nwrote " + ", ".join(str(p) for p in written), file=out)
    return results
