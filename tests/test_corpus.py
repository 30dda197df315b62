"""Corpus -> stories: cleaning, the grouping of the default corpus, rules."""

from pathlib import Path

import pytest

from worker.config_files import load_story_rules
from worker.errors import ConfigError
from worker.models import CorpusDocument, Story, StoryRule
from worker.stories.cleaning import clean_paragraphs
from worker.stories.corpus import apply_rules, build_stories, story_from_documents
from worker.stories.folder import read_corpus

CORPUS = Path(__file__).resolve().parents[1] / "config" / "corpus"
CORPUS2 = Path(__file__).resolve().parent / "fixtures" / "corpus2"


def _read(folder, reverse=False):
    documents = read_corpus(folder)
    return documents[::-1] if reverse else documents


def _cleaned(text: str) -> list[str]:
    return [p.text for p in clean_paragraphs(CorpusDocument(name="doc.txt", text=text))]


@pytest.fixture(scope="module")
def stories():
    documents = read_corpus(CORPUS)
    return build_stories(documents)


def test_cleaning_drops_captions_repeats_and_furniture():
    text = "\n".join(
        [
            "The plane crashed near Aktau on Wednesday, killing 38 people.",
            "Click to Gallery",
            "Blinken meets Sybiha in Brussels. (Nicolas Tucat, Pool Photo via AP)",
            "People are seen standing next to the rear of the crashed passenger jet",
            "Read More",
            "Source link",
            "-",
            "A repeated gallery line without credit.",
            "A repeated gallery line without credit.",
            "Investigators said the black boxes were recovered on Thursday.",
        ]
    )
    assert _cleaned(text) == [
        "The plane crashed near Aktau on Wednesday, killing 38 people.",
        "Investigators said the black boxes were recovered on Thursday.",
    ]


def test_cleaning_keeps_headlines():
    assert _cleaned(
        "OpsLens\n\nTajikistan Buys Presidential Plane From Mexico For $92 Million\n\nSource link"
    ) == ["Tajikistan Buys Presidential Plane From Mexico For $92 Million"]


# Each expected story: phrases that must all land in one story, and in no other expected one.
EXPECTED = {
    "azal crash": ["Aktau", "Pantsir", "Putin offered an apology", "was shot at from Russia"],
    "ukraine aid": ["every dollar we have", "$1.25 billion military aid package", "$800 million"],
    "nk troops": [
        "human wave",
        "first North Korean prisoners of war",
        "10,000 North Korean troops",
    ],
    "fico gas": ["second energy front", "Fico of acting on Putin"],
    "sweden article 4": ["Article 4"],
    "atacms": ["ATACMS"],
    "oryol depot": ["Oryol"],
    "cop29": ["COP29 climate summit", "UNFCCC", "eco-activists"],
    "ramstein": ["Ramstein", "Stoltenberg visited Kyiv"],
    "tajik plane": ["Tajikistan Buys Presidential Plane"],
}


def _story_of(stories, phrase):
    owners = {s.id for s in stories for fact in s.facts if phrase in fact}
    return owners


@pytest.mark.parametrize("name", list(EXPECTED))
def test_default_corpus_groups_each_expected_story_once(stories, name):
    owners = set()
    for phrase in EXPECTED[name]:
        owners |= _story_of(stories, phrase)
    assert len(owners) == 1, f"{name}: phrases spread over {owners}"
    (owner,) = owners
    for other, phrases in EXPECTED.items():
        if other != name:
            assert not any(owner in _story_of(stories, p) for p in phrases), (
                f"{name} shares a story with {other}"
            )


def test_default_corpus_gives_ten_stories(stories):
    assert len(stories) == 10


def test_crash_story_spans_three_documents(stories):
    (crash,) = [s for s in stories if any("Aktau" in f for f in s.facts) and len(s.documents) == 3]
    assert [d[:3] for d in crash.documents] == ["000", "001", "004"]


@pytest.mark.parametrize(
    "furniture",
    ["Read More", "Click to Gallery", "Source link", "Leave a review", "Pool Photo via AP"],
)
def test_captions_and_furniture_are_never_facts(stories, furniture):
    assert not any(furniture in fact for s in stories for fact in s.facts)


def test_ids_are_unique_slugs_and_deterministic(stories):
    ids = [s.id for s in stories]
    assert len(set(ids)) == len(ids)
    assert all(i == i.lower() and " " not in i for i in ids)
    documents = read_corpus(CORPUS)[::-1]
    assert [s.id for s in build_stories(documents)] == ids


def test_every_story_has_title_terms_documents_and_facts(stories):
    for story in stories:
        assert story.title and story.key_terms and story.documents and story.facts


def test_rules_rename_merge_route_and_define_keyword_stories(stories):
    tajik = next(s for s in stories if any("Tajikistan" in f for f in s.facts))
    cop = next(s for s in stories if any("COP29" in f for f in s.facts))
    rules = [
        StoryRule(
            id="tajik-plane",
            match=tajik.id,
            title="Tajik plane",
            merge=(cop.id,),
            destinations=("slack",),
        ),
        StoryRule(id="f1", title="Baku F1", keywords=("grand prix",)),
    ]
    edited = build_stories(
        read_corpus(CORPUS),
        rules,
    )
    ids = [s.id for s in edited]
    assert "tajik-plane" in ids and cop.id not in ids and "f1" in ids
    story = next(s for s in edited if s.id == "tajik-plane")
    assert story.title == "Tajik plane" and story.destinations == ("slack",)
    assert any("COP29" in f for f in story.facts)
    keyword_only = next(s for s in edited if s.id == "f1")
    assert keyword_only.keywords == ("grand prix",) and keyword_only.facts == ()


def test_rule_naming_no_story_is_a_config_error():
    with pytest.raises(ConfigError):
        build_stories(
            [CorpusDocument("a.txt", "The plane crashed near Aktau on Wednesday.")],
            [StoryRule(id="x", match="nothing-like-this")],
        )


def test_match_takes_whole_title_words_that_fit_one_story():
    stories = build_stories(_read(CORPUS2))
    dam = _corpus2_story(stories, "Rescue crews searched")
    # "Vostrin dam" fits one title; "Vost" is only a piece of a word; "in" is in two.
    edited = apply_rules(stories, [StoryRule(id="d", match="Vostrin dam")])
    assert next(s for s in edited if s.id == "d").facts == dam.facts
    with pytest.raises(ConfigError) as caught:
        apply_rules(stories, [StoryRule(id="x", match="Vost"), StoryRule(id="y", match="in")])
    problems = "\n".join(caught.value.problems)
    assert "match 'Vost' names no story" in problems
    assert "match 'in' fits 2 story titles" in problems and dam.id in problems


def test_interleaved_paragraphs_join_the_story_they_tell(stories):
    """The North Korean troop run inside the aid article of 000 joins the Kursk story."""
    (nk,) = [s for s in stories if any("human wave" in f for f in s.facts)]
    assert any("10,000 North Korean troops" in f for f in nk.facts)
    assert any("50,000 troops to Kursk" in f for f in nk.facts)
    assert "000_e6dd30402c8e6602.txt" in nk.documents


def test_titles_read_as_headlines(stories):
    titles = {s.title for s in stories}
    assert "Tajikistan Buys Presidential Plane From Mexico For $92 Million" in titles
    for title in titles:
        assert len(title) <= 145
        assert not title.lower().startswith(("the incident", "this ", "however", "meanwhile"))


def test_documents_in_any_order_give_the_same_stories():
    forward = build_stories(_read(CORPUS))
    backward = build_stories(_read(CORPUS, reverse=True))
    shuffled = build_stories([*_read(CORPUS)[2:], *_read(CORPUS)[:2]])
    assert forward == backward == shuffled


def test_dateline_is_not_a_fact(stories):
    assert not any(f.startswith("KYIV, Ukraine (AP)") for s in stories for f in s.facts)


# A second, different corpus written for the tests: three stories, one interleaved in
# another's article, one spread over an aggregator page and an article with a headline.
CORPUS2_EXPECTED = {
    "dam": ["Rescue crews searched", "Prosecutors opened an inquiry", "Investigators say"],
    "strike": ["extended their strike", "12 percent pay rise", "Nurses in Dorvale walked"],
    "launch": ["Skyreach launched", "Skyreach put its first", "Mara Ostby"],
}


def test_second_corpus_groups_its_three_stories():
    stories = build_stories(_read(CORPUS2))
    assert len(stories) == 3
    owners = {}
    for name, phrases in CORPUS2_EXPECTED.items():
        (owner,) = {s.id for p in phrases for s in stories if any(p in f for f in s.facts)}
        owners[name] = owner
    assert len(set(owners.values())) == 3
    launch = next(s for s in stories if s.id == owners["launch"])
    assert launch.title == "Skyreach Reaches Orbit With Kestrel-2 Rocket From Andøya"
    assert launch.id.isascii()
    assert not any("Pool Photo" in f or "Leave a review" in f for s in stories for f in s.facts)
    assert build_stories(_read(CORPUS2, reverse=True)) == stories


def _corpus2_story(stories, phrase):
    return next(s for s in stories if any(phrase in f for f in s.facts))


def test_split_moves_passages_that_mention_a_keyword_into_a_new_story():
    stories = build_stories(_read(CORPUS2))
    dam = _corpus2_story(stories, "Rescue crews searched")
    rule = StoryRule(
        id="hydrolux-inquiry",
        match=dam.id,
        keywords=("Hydrolux",),
        split=True,
        title="Inquiry into Hydrolux",
        destinations=("slack",),
    )
    edited = apply_rules(stories, [rule])
    assert len(edited) == len(stories) + 1
    new = next(s for s in edited if s.id == "hydrolux-inquiry")
    rest = next(s for s in edited if s.id == dam.id)
    assert new.title == "Inquiry into Hydrolux" and new.destinations == ("slack",)
    assert new.facts and all("Hydrolux" in f for f in new.facts)
    assert not any("Hydrolux" in f for f in rest.facts)
    assert set(new.facts) | set(rest.facts) == set(dam.facts)


def test_merge_rename_exclude_and_keywords_edit_a_story():
    stories = build_stories(_read(CORPUS2))
    dam = _corpus2_story(stories, "Rescue crews searched")
    strike = _corpus2_story(stories, "Nurses in Dorvale walked")
    rule = StoryRule(
        id="velmora",
        match="Vostrin",  # a word of the story's title
        title="Velmora news",
        keywords=("Velmora",),
        exclude=("football",),
        merge=(strike.id,),
    )
    edited = apply_rules(stories, [rule])
    assert [s.id for s in edited].count("velmora") == 1 and strike.id not in {s.id for s in edited}
    story = next(s for s in edited if s.id == "velmora")
    assert story.title == "Velmora news"
    assert story.keywords == ("Velmora",) and story.exclude == ("football",)
    assert set(dam.facts) | set(strike.facts) == set(story.facts)


def test_every_bad_rule_is_reported_at_once():
    stories = build_stories(_read(CORPUS2))
    dam = _corpus2_story(stories, "Rescue crews searched")
    rules = [
        StoryRule(id="a", match="no-such-story"),
        StoryRule(id="b", match=dam.id, merge=("missing",)),
        StoryRule(id="c", match=stories[1].id, keywords=("zeppelin",), split=True),
        StoryRule(id=stories[2].id, keywords=("duplicate id",)),
    ]
    with pytest.raises(ConfigError) as caught:
        apply_rules(stories, rules)
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 4
    assert "no-such-story" in problems and "missing" in problems
    assert "zeppelin" in problems and "used by two stories" in problems


def test_stories_toml_split_is_parsed_and_checked(tmp_path):
    path = tmp_path / "stories.toml"
    path.write_text(
        "[[stories]]\nid = 'inquiry'\nmatch = 'vostrin'\nkeywords = ['Hydrolux']\nsplit = true\n"
        "[[stories]]\nid = 'bad'\nsplit = true\nkeywords = ['x']\n"
        "[[stories]]\nid = 'worse'\nmatch = 'a'\nsplit = true\nkeywords = ['x']\nmerge = ['b']\n",
        encoding="utf-8",
    )
    problems: list[str] = []
    rules, known_as_of = load_story_rules(path, problems)
    assert known_as_of is None
    assert rules[0].split is True and rules[0].keywords == ("Hydrolux",)
    assert len(problems) == 2
    assert all("split" in p for p in problems)


def test_story_from_multi_topic_documents_is_centred_on_their_common_topic():
    """A show transcript covers many topics; only what the documents share is the story."""
    spill = [
        "Oil from the Deepwater Horizon rig reached the Louisiana coast, BP said.",
        "BP engineers tried to cap the Deepwater Horizon well with a containment dome.",
        "Crude from the BP well spread toward Louisiana marshes as the rig sank.",
    ]
    documents = [
        CorpusDocument(f"d{number}", f"{sentence}\nThe Deepwater Horizon spill grew, BP said.")
        for number, sentence in enumerate(spill)
    ]
    transcript = (
        "ANCHOR: Welcome to the show.\n"
        "Volcanic ash from Eyjafjallajokull grounded flights across Iceland and Scandinavia.\n"
        "Oil from the BP rig Deepwater Horizon kept leaking off Louisiana.\n"
        "Astronomers in Chile photographed a comet near Jupiter with the Atacama telescope."
    )
    documents.append(CorpusDocument("show", transcript))
    story = story_from_documents("spill", documents)
    text = " ".join(story.facts)
    assert "Deepwater Horizon kept leaking" in text
    assert "Eyjafjallajokull" not in text and "Atacama" not in text
    assert "Deepwater" in story.key_terms or "BP" in story.key_terms


def test_a_merged_story_is_known_as_of_the_later_of_its_parts_dates():
    from datetime import UTC, datetime  # noqa: PLC0415

    from worker.stories.rules import apply_rules  # noqa: PLC0415

    early, late = datetime(2024, 12, 1, tzinfo=UTC), datetime(2024, 12, 28, tzinfo=UTC)
    stories = [
        Story(id="a", title="A", key_terms=(), documents=(), facts=("a fact",)),
        Story(id="b", title="B", key_terms=(), documents=(), facts=("b fact",)),
        Story(id="c", title="C", key_terms=(), documents=(), facts=("c fact",)),
    ]
    rules = [
        StoryRule(id="b", match="b", known_as_of=late),
        StoryRule(id="a", match="a", merge=("b",)),
    ]
    merged, other = apply_rules(stories, rules, known_as_of=early)
    assert (merged.id, merged.known_as_of) == ("a", late)
    assert (other.id, other.known_as_of) == ("c", early)
