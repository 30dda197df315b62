"""`storywatch eval`: one command runs every set, prints one table, writes JSON (and plots)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DATA = Path(__file__).parent / "fixtures" / "eval"


def storywatch_eval(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - callers assert the return code
        [sys.executable, "-m", "worker", "eval", "--data", str(DATA), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )


def test_eval_runs_every_set_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = storywatch_eval("--no-plots", "--output-dir", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    quality = json.loads((out / "quality.json").read_text())
    assert set(quality["sets"]) == {"seed", "t17", "t17-one-folder", "trec", "hamborg"}
    metrics = {(row["set"], row["metric"]) for row in quality["table"]}
    assert {("seed", "tracking"), ("seed", "development"), ("t17", "alert_dates")} <= metrics
    # The seed numbers come with their leave-one-story-out twins, one table for all sets.
    assert {("seed", "development (LOSO CV)"), ("t17-one-folder", "tracking")} <= metrics
    assert {("trec", "nuggets"), ("hamborg", "tracking"), ("t17", "replay time")} <= metrics
    for name in ("seed_followups", "t17", "t17_one_folder_eval", "trec_ts", "hamborg_events"):
        assert json.loads((out / f"{name}.json").read_text())["metrics"]
    assert "status" in result.stdout and "t17" in result.stdout
    assert not (out / "plots").exists()


def test_eval_draws_a_plot_per_set(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "results"
    result = storywatch_eval(
        "--sets", "seed,hamborg", "--jobs", "1", "--output-dir", str(out), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    for name in ("seed", "hamborg"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sweep = json.loads((out / "hamborg_events.json").read_text())["sweep"]
    assert sum(1 for p in sweep["points"] if p["default"]) == 2  # one per knob


def test_eval_rejects_an_unknown_set(tmp_path: Path) -> None:
    result = storywatch_eval("--sets", "seed,nope", "--no-plots", cwd=tmp_path)
    assert result.returncode == 2 and "nope" in result.stderr
