"""Feedback changes what happens next: a rejected report's kin stop matching the story,
a "not new" story asks more of a claim, and the service applies both to every worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_tracker import DEVELOPMENT
from worker.decide.tracker import Tracker
from worker.models import Article, Story
from worker.stories.corpus import build_stories
from worker.stories.folder import read_corpus

CORPUS = Path(__file__).resolve().parents[1] / "config" / "corpus"
ITEMS = Path(__file__).parent / "fixtures" / "followups" / "desk_items.json"


@pytest.fixture(scope="module")
def stories() -> list[Story]:
    return build_stories(read_corpus(CORPUS))


def dev_item(item_id: str) -> dict[str, str]:
    items = json.loads(ITEMS.read_text(encoding="utf-8"))["items"]
    found: dict[str, str] = next(i for i in items if i["id"] == item_id)
    return found


def test_a_wrong_story_verdict_stops_the_reports_kin_matching_and_no_other(stories):
    # ny-048 (gold: off-topic): Azerbaijan raids Sputnik's Baku office. It shares Baku,
    # Grozny and Aliyev with the Aktau crash story and matched it.
    raid = dev_item("ny-048")
    report = Article(id="raid", title=raid["title"], text=raid["text"])
    paragraphs = [p for p in raid["text"].split("\n") if p.strip()]
    # Another outlet's report of the same raid: its second half under its own headline.
    kin = Article(
        id="kin",
        title="Baku police detain Sputnik Azerbaijan staff in raid",
        text="\n".join(paragraphs[len(paragraphs) // 2 :]),
    )
    tracker = Tracker(stories)
    decision = tracker.decide(report)
    assert decision.match is not None
    story = decision.match.story_id
    kin_before = tracker.decide(kin)
    assert kin_before.match is not None and kin_before.match.story_id == story
    tracker.reject(story, report.title, report.text)
    assert tracker.decide(kin).match is None
    # The story's own news still matches it.
    development = tracker.decide(DEVELOPMENT)
    assert development.match is not None and development.match.story_id == story
    assert development.new_development


def test_a_not_new_verdict_makes_the_story_ask_more_of_a_claim(stories):
    tracker = Tracker(stories)
    one_new_name = Article(
        id="x",
        title="Kazakh investigators question Abenov over Aktau crash",
        text="Kazakh investigators questioned Abenov about the Azerbaijan Airlines crash "
        "near Aktau on Monday.",
    )
    before = tracker.decide(one_new_name)
    assert before.match is not None and before.new_development
    tracker.not_new(before.match.story_id)
    after = tracker.decide(one_new_name)
    assert after.match == before.match and not after.new_development
    # A claim with more than one thing the story never saw is still news.
    finding = Article(
        id="y",
        title="Aktau crash commission finds 412 fragments of a Pantsir missile",
        text="Investigator Karabayev said 412 fragments of a Pantsir missile were found in the "
        "Azerbaijan Airlines Embraer that crashed near Aktau.",
    )
    assert tracker.decide(finding).new_development
