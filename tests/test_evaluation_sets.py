"""Loaders and protocols of the evaluation harness, on tiny fixture files of each format."""

from dataclasses import replace
from datetime import date
from pathlib import Path

from storyeval.harness import LoadedSet, evaluate
from storyeval.sets import (
    T17_TRACKED,
    hamborg_protocol,
    seed_protocol,
    subsample,
    t17_one_folder_protocol,
    t17_protocol,
    t17_timelines,
)
from storyeval.sweep import knob_default, swept_config
from storyeval.trec import read_year
from tests.conftest import SEED_CORPUS
from worker.decide.tracker import TrackerConfig

DATA = Path(__file__).parent / "fixtures" / "eval"


def test_seed_stream_keeps_file_order_and_gold_labels():
    protocol = seed_protocol(DATA / "seed-followups" / "dev.jsonl", SEED_CORPUS)
    assert [a.id for a in protocol.stream] == ["s1", "s2", "s3"]
    assert [(g.story, g.label, g.developments) for g in protocol.gold] == [
        ("azal-crash", "new_development", ("d1",)),
        ("azal-crash", "rehash", ()),
        (None, "off_topic", ()),
    ]
    assert protocol.stories and not protocol.gold_ids


def test_t17_corpus_is_each_tracked_story_first_articles_and_the_rest_streams_by_date():
    protocol = t17_protocol(DATA, corpus_size=2)
    assert tuple(s.id for s in protocol.stories) == T17_TRACKED
    ids = [a.id for a in protocol.stream]
    # bp-oil-spill/0 and /a share the first day: the id breaks the tie, so /a is corpus
    # and /1 (a day later) streams; the corpus never streams.
    assert "bp-oil-spill/0" not in ids and "bp-oil-spill/a" not in ids
    assert ids[:3] == ["bp-oil-spill/1", "bp-oil-spill/2", "bp-oil-spill/3"]
    assert ids[-2:] == ["iraq-war/0", "iraq-war/1"]
    published = [a.published for a in protocol.stream]
    assert published == sorted(published)
    gold = {g.id: g.story for g in protocol.gold}
    assert gold["iraq-war/0"] is None and gold["h1n1/2"] == "h1n1"
    assert protocol.gold_ids


def test_t17_one_folder_groups_the_same_corpus_itself_and_streams_the_same_articles():
    per_story = t17_protocol(DATA, corpus_size=2)
    one_folder = t17_one_folder_protocol(DATA, corpus_size=2)
    assert one_folder.stream == per_story.stream and one_folder.gold == per_story.gold
    # The grouping, not the gold, decides the stories: mapped by majority vote.
    assert not one_folder.gold_ids
    assert not {s.id for s in one_folder.stories} & set(T17_TRACKED)
    corpus = {d for s in per_story.stories for d in s.documents}
    assert {d for s in one_folder.stories for d in s.documents} == corpus


def test_t17_timelines_are_days_per_story():
    days = t17_timelines(DATA)
    assert days["bp-oil-spill"] == {date(2010, 4, 20), date(2010, 4, 23)}


def test_hamborg_tracks_each_event_from_its_first_article():
    protocol = hamborg_protocol(DATA)
    assert [s.id for s in protocol.stories] == ["1-quake", "2-election"]
    assert [(a.id, g.story) for a, g in zip(protocol.stream, protocol.gold, strict=True)] == [
        ("h2", "1-quake"),
        ("h4", "2-election"),
    ]


def test_trec_topic_is_a_keyword_story_and_documents_regroup_pooled_sentences():
    (topic,) = read_year(DATA, "2014")
    assert topic.query_id == "TS14.11"
    assert topic.story.keywords == ("costa concordia",)
    assert topic.story.facts == ("Costa Concordia disaster and recovery",)
    assert [d.doc_id for d in topic.documents] == [
        "1326500000-aaaa",
        "1326600000-bbbb",
        "1326700000-cccc",
    ]
    first = topic.documents[0]
    assert first.article().text.splitlines()[1].startswith("Three people died")
    assert first.trace("Three people died after the Costa Concordia capsized near Giglio,") == (
        "1326500000-aaaa-1"
    )
    assert first.trace("A sentence from elsewhere.") is None
    # The copy in the third document inherits the original's nugget.
    assert topic.update_nuggets["1326700000-cccc-0"] == frozenset({"VMTS14.11.002"})
    # A nugget matched only by an update outside the pool is not in the recall base.
    assert set(topic.first_pooled) == {f"VMTS14.11.00{i}" for i in range(1, 5)}
    assert topic.first_pooled["VMTS14.11.002"] == 1326500000.0
    assert topic.nuggets_total == 5


def test_trec_evaluation_reports_nuggets_per_topic():
    topics = tuple(read_year(DATA, "2014"))
    result = evaluate(LoadedSet("trec", topics=topics), TrackerConfig())
    topic = result.details["per_topic"]["TS14.11"]
    assert topic["documents"] == 3 and topic["nuggets"] == 4
    assert topic["untraced_sentences"] == 0
    assert 0.0 <= result.metrics["nuggets"].precision <= 1.0


def test_subsample_keeps_stories_and_aligns_gold():
    protocol = t17_protocol(DATA, corpus_size=2)
    sample = subsample(protocol, 3)
    assert sample.stories == protocol.stories
    assert [a.id for a in sample.stream] == [g.id for g in sample.gold]
    assert len(sample.stream) == len(protocol.stream[::3])


def test_sweep_changes_one_threshold_and_nothing_else():
    base = TrackerConfig()
    swept = swept_config(base, ("match", "threshold"), 0.5)
    assert swept.match.threshold == 0.5
    assert swept.novelty == base.novelty
    assert replace(swept.match, threshold=base.match.threshold) == base.match
    assert knob_default(base, ("match", "threshold")) == base.match.threshold
    assert knob_default(base, ("match", "no_such_knob")) is None
