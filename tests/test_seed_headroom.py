"""benchmarks/quality/seed_headroom.py: where developments are lost, and signal separation."""

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from storyeval.metrics import GoldItem
from tests.conftest import REPO, SEED_CORPUS, load_script
from worker.models import Article, Story

SCRIPT = REPO / "benchmarks" / "quality" / "seed_headroom.py"
DATA = Path(__file__).parent / "fixtures" / "eval"


headroom = load_script(SCRIPT)


def test_event_dates_resolve_against_the_publication_day() -> None:
    published = date(2025, 1, 9)  # a Thursday
    assert headroom.event_dates("On Wednesday, the airline said", published) == [date(2025, 1, 8)]
    assert headroom.event_dates("The crash on Dec. 25 killed 38", published) == [date(2024, 12, 25)]
    assert headroom.event_dates("It closed on 9 January and reopened today", published) == [
        date(2025, 1, 9),
        date(2025, 1, 9),
    ]
    assert headroom.event_dates("Talks resume in March", published) == []


def test_auc_counts_ties_as_half() -> None:
    assert headroom.auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert headroom.auc([0.1], [0.9]) == 0.0
    assert headroom.auc([0.5], [0.5]) == 0.5
    assert headroom.auc([], [0.5]) is None


def _article(name: str, day: int) -> Article:
    return Article(
        id=name,
        url=f"https://example.org/{name}",
        title=None,
        text="text",
        published=datetime(2025, 1, day, 12, tzinfo=UTC),
    )


def test_ceilings_sort_developments_into_cut_lost_and_reachable() -> None:
    story = Story(
        id="crash",
        title="crash",
        key_terms=(),
        documents=("crash.txt",),
        facts=("fact",),
        known_as_of=datetime(2025, 1, 2, 23, 59, tzinfo=UTC),
    )
    stream = [_article("a", 1), _article("b", 3), _article("c", 4), _article("d", 5)]
    gold = [
        GoldItem("a", "crash", "new_development", ("before-cutoff",)),
        GoldItem("b", "crash", "new_development", ("reachable",)),
        GoldItem("c", "crash", "new_development", ("unmatched",)),
        GoldItem("d", None, "off_topic", ()),
    ]
    protocol = headroom.TrackingProtocol("seed", (story,), tuple(stream), tuple(gold), False)
    outputs = [
        {"id": "a", "story": "crash", "new_development": False},
        {"id": "b", "story": "crash", "new_development": True},
        {"id": "c", "story": None, "new_development": False},
        {"id": "d", "story": "crash", "new_development": True},  # a confuser matched
    ]
    result = headroom.ceilings(protocol, outputs)
    assert result["cut_by_corpus_dates"] == ["before-cutoff"]
    assert result["lost_by_matching"] == ["unmatched"]
    assert result["reachable"] == 1
    assert result["recall_ceiling"] == round(1 / 3, 3)
    assert result["wrong_story_matches_after_cutoff"] == 1
    assert result["precision_ceiling"] == 0.5


def test_the_script_writes_its_report(tmp_path: Path) -> None:
    output = tmp_path / "headroom.json"
    result = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [
            sys.executable,
            str(SCRIPT),
            "--data",
            str(DATA),
            "--corpus",
            str(SEED_CORPUS),
            "--no-embeddings",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(output.read_text(encoding="utf-8"))
    assert payload["ceilings"]["developments"] == 1
    assert set(payload) == {"set", "ceilings", "relative_dates", "words"}
