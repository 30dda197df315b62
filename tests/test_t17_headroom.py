"""benchmarks/quality/t17_headroom.py: day rules and ceilings scored on a replay."""

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tests.conftest import REPO, load_script
from worker.models import Article

SCRIPT = REPO / "benchmarks" / "quality" / "t17_headroom.py"
DATA = Path(__file__).parent / "fixtures" / "eval"


headroom = load_script(SCRIPT)


def _article(number: int, day: int) -> Article:
    return Article(
        id=f"a{number}",
        url=f"https://example.org/{number}",
        title=None,
        text="text",
        published=datetime(2011, 3, day, 12, tzinfo=UTC),
    )


def _replayed(
    rows: Sequence[tuple[int, str | None, str | None, bool]],
) -> tuple[list[Article], list[str | None], list[dict[str, Any]]]:
    """(day, gold story, system story, alerted) per article, as the replay would give."""
    stream = [_article(i, day) for i, (day, _, _, _) in enumerate(rows)]
    gold = [g for _, g, _, _ in rows]
    outputs = [{"story": s, "new_development": alerted} for _, _, s, alerted in rows]
    return stream, gold, outputs


def test_rules_and_ceilings_on_a_small_replay() -> None:
    timeline = {date(2011, 3, 1), date(2011, 3, 3), date(2011, 3, 5)}
    stream, gold, outputs = _replayed(
        [
            (1, "libya", "libya", True),  # timeline day, alerted, 2 reports
            (1, "libya", "libya", False),
            (2, "libya", "libya", True),  # not a timeline day: a wrong alert
            (3, "libya", "libya", False),  # timeline day, matched, not alerted
            (4, "syria", "libya", False),  # a wrong match
            (5, "libya", None, False),  # timeline day the matcher missed
        ]
    )
    days = headroom.story_days(["libya"], stream, gold, outputs, {"libya": timeline})
    table = headroom.score_rules(days)

    def f1(rule: str) -> float:
        return float(table[rule]["per_story"]["libya"]["f1"])

    def counts(rule: str) -> tuple[int, int]:
        scores = table[rule]["per_story"]["libya"]
        return scores["correct"], scores["predicted"]

    assert counts("system") == (1, 2)
    assert counts("every matched day") == (2, 4)
    assert counts("matched days with >= 2 reports") == (1, 1)
    assert counts("alert days with >= 2 reports") == (1, 1)
    assert counts("ceiling: timeline days with a matched report") == (2, 2)
    assert counts("ceiling: timeline days with any report") == (3, 3)
    assert f1("ceiling: timeline days with any report") == 1.0
    assert f1("system") < f1("ceiling: timeline days with a matched report") < 1.0
    # Matched days: 1 (2 reports, timeline), 2 (1), 3 (1, timeline), 4 (1).
    # Timeline vs other pairs: (2,1) win, (2,1) win, (1,1) tie, (1,1) tie -> 3/4.
    assert headroom.volume_auc(days["libya"]) == 0.75


def test_the_script_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "headroom.json"
    result = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [
            sys.executable,
            str(SCRIPT),
            "--data",
            str(DATA),
            "--corpus-size",
            "1",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(out.read_text())
    rules = payload["rules"]
    assert "system" in rules and "ceiling: timeline days with any report" in rules
    for row in rules.values():
        assert 0.0 <= row["f1"] <= 1.0
    # No rule can beat a perfect day selector on the same matching.
    ceiling = rules["ceiling: timeline days with a matched report"]["f1"]
    assert all(row["f1"] <= ceiling for name, row in rules.items() if "ceiling" not in name)
    assert "ceiling" in result.stdout
