"""Tracker: decide is pure, learn makes copies old, add_facts restores state."""
# ruff: noqa: E501  (fixture sentences are quoted whole, as news text reads)

import dataclasses
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.surge_reports import SURGE_REPORTS
from worker.decide import prepared
from worker.decide.prepared import decode_view, encode_view, prepare_view, view_fingerprint
from worker.decide.replay import read_articles, replay
from worker.decide.tracker import Tracker, TrackerConfig
from worker.models import Article, Story
from worker.stories.corpus import build_stories
from worker.stories.folder import read_corpus
from worker.text.terms import bounded_text

DEVELOPMENT = Article(
    id="d1",
    title="Kazakhstan publishes interim report on Azerbaijan Airlines crash near Aktau",
    text=(
        "Kazakhstan's transport ministry published an interim report on the Azerbaijan Airlines Embraer "
        "crash near Aktau, finding the aircraft was damaged by 412 striking elements of a warhead. "
        "Investigators from Azerbaijan, Brazil and Russia took part."
    ),
)


CORPUS = Path(__file__).resolve().parents[1] / "config" / "corpus"


@pytest.fixture(scope="module")
def seed_stories() -> list[Story]:
    documents = read_corpus(CORPUS)
    return build_stories(documents)


def story_with(stories: list[Story], phrase: str) -> Story:
    return next(s for s in stories if any(phrase in fact for fact in s.facts))


def test_decide_does_not_mutate(seed_stories):
    tracker = Tracker(seed_stories)
    first = tracker.decide(DEVELOPMENT)
    assert tracker.decide(DEVELOPMENT) == first
    assert first.new_development


def test_learn_then_decide_same_article_is_not_new(seed_stories):
    tracker = Tracker(seed_stories)
    decision = tracker.decide(DEVELOPMENT)
    learned = tracker.learn(DEVELOPMENT, decision)
    assert learned
    again = tracker.decide(DEVELOPMENT)
    assert again.story_id == decision.story_id
    assert not again.new_development


def test_syndicated_copy_after_learning_is_not_new(seed_stories):
    tracker = Tracker(seed_stories)
    tracker.learn(DEVELOPMENT, tracker.decide(DEVELOPMENT))
    copy = Article(
        id="d2", title=DEVELOPMENT.title, text=DEVELOPMENT.text + " (Reuters)", source="Wire"
    )
    assert not tracker.decide(copy).new_development


def test_add_facts_restores_what_learn_returned(seed_stories):
    live = Tracker(seed_stories)
    learned = live.learn(DEVELOPMENT, live.decide(DEVELOPMENT))
    restored = Tracker(seed_stories)
    restored.add_facts(story_with(seed_stories, "Aktau").id, learned)
    assert restored.decide(DEVELOPMENT) == live.decide(DEVELOPMENT)


def test_story_lookup(seed_stories):
    tracker = Tracker(seed_stories)
    assert tracker.story_ids == tuple(s.id for s in seed_stories)
    assert tracker.story(seed_stories[0].id) == seed_stories[0]


def test_replay_rows_in_order_with_nulls_and_month_dates(seed_stories):
    rows = [
        {
            "id": "a",
            "title": None,
            "text": DEVELOPMENT.text,
            "published": "2025-03",
            "url": None,
            "source": None,
        },
        {
            "id": "b",
            "title": "NBA",
            "text": "The Thunder won the NBA Finals.",
            "published": None,
            "extra": 1,
        },
    ]
    articles = list(read_articles(rows))
    assert articles[0].published is not None and articles[0].published.month == 3
    out = list(replay(Tracker(seed_stories), articles))
    assert [o["id"] for o in out] == ["a", "b"]
    assert set(out[0]) == {"id", "story", "score", "new_development", "new_facts"}
    assert (
        out[1]["story"] is None and out[1]["new_development"] is False and out[1]["new_facts"] == []
    )


def test_add_facts_of_several_articles_in_one_call_reaches_identical_decisions(seed_stories):
    """The service restores all facts of a story in one add_facts call, in stored order."""
    follow_up = Article(
        id="d3",
        title="Azerbaijan Airlines suspends Baku to Kazan flights after Aktau crash",
        text="Azerbaijan Airlines suspended flights from Baku to Kazan after the Embraer crash near Aktau.",
    )
    probe = Article(
        id="d4",
        title="Kazakhstan names Karabayev to lead the Aktau crash commission",
        text="Marat Karabayev will chair the commission on the Azerbaijan Airlines crash near Aktau.",
    )
    live = Tracker(seed_stories)
    stored: list[str] = []
    for article in (DEVELOPMENT, follow_up):
        stored.extend(live.learn(article, live.decide(article)))
    restored = Tracker(seed_stories)
    restored.add_facts(story_with(seed_stories, "Aktau").id, stored)
    for article in (DEVELOPMENT, follow_up, probe):
        assert restored.decide(article) == live.decide(article)


OUTLETS = Path(__file__).parent / "fixtures" / "outlets"


def outlet_article(name: str, published: datetime) -> Article:
    title, *paragraphs = (OUTLETS / name).read_text(encoding="utf-8").splitlines()
    return Article(id=name, title=title, text="\n".join(paragraphs), published=published)


def test_another_outlets_report_of_a_recent_development_repeats_it(seed_stories):
    """One development, one alert: a rewrite two days later names the development it
    repeats; the same rewrite two months later is a report in its own right."""
    day = datetime(2025, 7, 3, tzinfo=UTC)
    original = outlet_article("rewrite-1.txt", day)
    tracker = Tracker(seed_stories)
    first = tracker.decide(original)
    assert first.new_development and first.repeats is None
    assert "57e6" in first.specifics  # the missile type no seed mentions
    tracker.learn(original, first)

    later = outlet_article("rewrite-2.txt", day + timedelta(days=2))
    decision = tracker.decide(later)
    assert decision.story_id == first.story_id
    assert decision.repeats == original.id
    assert not decision.new_development

    months_later = dataclasses.replace(later, published=day + timedelta(days=60))
    assert tracker.decide(months_later).repeats is None


def test_add_development_restores_what_learn_remembered(seed_stories):
    day = datetime(2025, 7, 3, tzinfo=UTC)
    original, later = outlet_article("rewrite-1.txt", day), outlet_article("rewrite-2.txt", day)
    live = Tracker(seed_stories)
    first = live.decide(original)
    facts = live.learn(original, first)
    restored = Tracker(seed_stories)
    restored.add_facts(first.story_id, facts)
    restored.add_development(first.story_id, original.id, first.specifics, day)
    assert restored.decide(later) == live.decide(later)


VERDICT = [
    Article(f"verdict-{n}", title, text, published=datetime(2025, 11, 7, 9 + n, tzinfo=UTC))
    for n, (title, text) in enumerate(SURGE_REPORTS)
]


def test_a_surge_of_reports_in_known_words_is_one_development(seed_stories):
    """No report brings an unseen name or figure, yet three in a day on a quiet story is
    news: the second alerts, the third is a report of that surge."""
    tracker = Tracker(seed_stories)
    decisions = []
    for article in VERDICT:
        decision = tracker.decide(article)
        decisions.append(decision)
        tracker.learn(article, decision)
    first, second, third = decisions
    assert first.story_id == second.story_id == third.story_id
    assert first.novelty is not None and not first.novelty.is_new
    assert not first.new_development
    assert second.new_development and second.surge
    assert second.novelty is not None and second.novelty.new_facts
    assert any(reason.startswith("surge: 2 reports") for reason in second.novelty.reasons)
    assert third.repeats == second.article_id and not third.new_development


def test_add_report_and_surge_development_restore_what_learn_counted(seed_stories):
    live = Tracker(seed_stories)
    restored = Tracker(seed_stories)
    for article in VERDICT[:2]:
        decision = live.decide(article)
        facts = live.learn(article, decision)
        assert decision.story_id is not None
        restored.add_facts(decision.story_id, facts)
        restored.add_report(decision.story_id, article.published)
        if decision.new_development:
            restored.add_development(
                decision.story_id,
                article.id,
                decision.specifics,
                article.published,
                surge=decision.surge,
            )
    assert restored.decide(VERDICT[2]) == live.decide(VERDICT[2])
    assert live.decide(VERDICT[2]).repeats == VERDICT[1].id


def test_a_report_published_by_the_storys_known_as_of_is_learned_not_alerted(seed_stories):
    """The user's corpus was written on 2025-12-26: a report of that day or before is
    something they knew, a report of the day after is news."""
    aktau = story_with(seed_stories, "Aktau")
    cutoff = datetime(2025, 12, 26, 23, 59, 59, tzinfo=UTC)
    stories = [
        dataclasses.replace(s, known_as_of=cutoff) if s is aktau else s for s in seed_stories
    ]
    same_day = dataclasses.replace(DEVELOPMENT, published=datetime(2025, 12, 26, 18, 0, tzinfo=UTC))
    naive_next_day = dataclasses.replace(DEVELOPMENT, published=datetime(2025, 12, 27, 9, 0))

    tracker = Tracker(stories)
    before = tracker.decide(same_day)
    assert before.story_id == aktau.id and not before.new_development
    assert before.novelty is not None and before.novelty.new_facts == ()
    assert any("known_as_of" in reason for reason in before.novelty.reasons)
    assert tracker.decide(naive_next_day).new_development
    assert tracker.learn(same_day, before)  # learned: a later copy of it is no news either
    assert not tracker.decide(naive_next_day).new_development


def test_reports_the_user_knew_do_not_make_a_surge_later_on_the_cutoff_day(seed_stories):
    """Known at 09:00 and 10:00, a third report of the same at 14:00 is no surge: the
    day's reports before the cutoff were the user's news, not a new wave."""
    aktau = story_with(seed_stories, "Aktau")
    cutoff = datetime(2024, 12, 26, 12, 0, tzinfo=UTC)
    stories = [
        dataclasses.replace(s, known_as_of=cutoff) if s is aktau else s for s in seed_stories
    ]
    tracker = Tracker(stories)
    for number, hour in enumerate((9, 10, 14)):
        report = dataclasses.replace(
            DEVELOPMENT,
            id=f"r{number}",
            source=f"outlet {number}",
            published=datetime(2024, 12, 26, hour, tzinfo=UTC),
        )
        decision = tracker.decide(report)
        assert decision.story_id == aktau.id
        assert not decision.new_development and not decision.surge
        tracker.learn(report, decision)


def test_a_huge_page_is_read_up_to_the_bound_and_teaches_a_bounded_number(seed_stories):
    # The development's text, then thousands of distinct on-topic sentences: a live blog's
    # whole archive served as one page.
    rng = random.Random(7)
    words = [f"{a}{b}" for a in ("vel", "tar", "mon", "kes", "dur") for b in ("ba", "rin", "sko")]
    filler = "\n".join(
        f"Update {n}: investigators near Aktau airport said " + " ".join(rng.sample(words, 8)) + "."
        for n in range(20_000)
    )
    huge = dataclasses.replace(DEVELOPMENT, id="huge", text=DEVELOPMENT.text + "\n" + filler)
    assert len(huge.text) > 1_000_000
    tracker = Tracker(seed_stories)
    tracker.decide(huge)  # reads the first 100,000 characters, not 1.4 million
    decision = tracker.decide(DEVELOPMENT)  # the story the page was matched to
    learned = tracker.learn(huge, decision)
    # The text bound binds first: what is learned all comes from the first 100,000
    # characters, in order.
    read = bounded_text(huge.text)
    assert 500 < len(learned) <= tracker.config.max_learned_sentences
    assert all(s in read for s in learned[1:])  # the first is the title
    numbers = [int(s.split()[1].rstrip(":")) for s in learned if s.startswith("Update ")]
    assert numbers == sorted(numbers) and numbers[-1] < 1_200
    # And the sentence bound, when it binds first.
    strict = Tracker(seed_stories, TrackerConfig(max_learned_sentences=200))
    assert len(strict.learn(huge, strict.decide(DEVELOPMENT))) == 200


def test_bounded_text_cuts_after_the_last_sentence_that_fits():
    text = "First sentence here. Second one follows. " * 10
    cut = bounded_text(text, 100)
    assert cut.endswith("follows.") or cut.endswith("here.")
    assert len(cut) <= 100 and text.startswith(cut)
    assert bounded_text("short", 100) == "short"


def test_match_alone_is_the_match_decide_makes(seed_stories):
    """The service's first look (`match`, no lock held) names the story `decide` would."""
    stream = Path(__file__).parent / "fixtures" / "followups" / "desk_items.json"
    rows = json.loads(stream.read_text(encoding="utf-8"))["items"]
    tracker = Tracker(seed_stories)
    matched = 0
    for article in read_articles(rows):
        decision = tracker.decide(article)
        assert tracker.match(article) == decision.match
        matched += decision.match is not None
        tracker.learn(article, decision)
    assert 20 <= matched < len(rows)  # both kinds were asked


def test_a_memoised_match_is_asked_again_once_the_tracker_changed(seed_stories):
    """`match` then `decide` of one article match once; any change in between (here a
    "wrong story" verdict on the article itself) is seen by the next look."""
    tracker = Tracker(seed_stories)
    first = tracker.match(DEVELOPMENT)
    assert first is not None
    assert tracker.decide(DEVELOPMENT).match == first
    tracker.reject(first.story_id, DEVELOPMENT.title, DEVELOPMENT.text)
    assert tracker.match(DEVELOPMENT) is None
    assert tracker.decide(DEVELOPMENT).match is None


def _stream() -> list[Article]:
    """Every outlet rewrite and a follow-up, then the corpus documents again (each read
    as a new article: long, dated, matched and known)."""
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    stream = [
        outlet_article(path.name, start + timedelta(hours=n))
        for n, path in enumerate(sorted(OUTLETS.glob("*.txt")))
    ]
    stream.append(DEVELOPMENT)
    for n, path in enumerate(sorted(CORPUS.glob("*.txt"))):
        title, _, body = path.read_text(encoding="utf-8").partition("\n")
        stream.append(Article(id=f"again-{n}", title=title, text=body))
    return stream


def test_a_tracker_given_prepared_views_decides_exactly_as_one_computing_its_own(
    seed_stories,
):
    """The storing process prepares each article's term vector and the decider takes it
    (worker.pipeline.deciding): decoded from its bytes, the view makes every decision,
    every field, what the tracker's own view makes."""
    config = TrackerConfig()
    own, primed = Tracker(seed_stories, config), Tracker(seed_stories, config)
    decided = 0
    for article in _stream():
        view = prepare_view(article.title, article.text, config)
        decoded = decode_view(encode_view(view))
        assert decoded == view and list(decoded.vector) == list(view.vector)
        expected = own.decide(article)
        primed.prime(article, decoded)
        assert primed.decide(article) == expected
        assert own.learn(article, expected) == primed.learn(article, expected)
        decided += expected.match is not None
    assert decided >= 5  # the stream exercised matched articles, not only unmatched ones


def test_a_view_fingerprint_names_the_article_the_knobs_and_the_code(monkeypatch):
    config = TrackerConfig()
    other = dataclasses.replace(config, match=dataclasses.replace(config.match, title_weight=2.0))
    base = view_fingerprint("T", "Text.", config)
    assert base == view_fingerprint("T", "Text.", config)
    assert base != view_fingerprint("T", "Text!", config)
    assert base != view_fingerprint("U", "Text.", config)
    assert base != view_fingerprint(None, "T\0Text.", config)
    assert base != view_fingerprint("T", "Text.", other)
    monkeypatch.setattr(prepared, "VIEW_VERSION", prepared.VIEW_VERSION + 1)
    assert base != view_fingerprint("T", "Text.", config)
