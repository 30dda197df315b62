"""Grouping on a noisy corpus: fragments and thinly supported side stories are not stories.

Issue 13, item 3: Timeline17's 60 corpus documents given as one folder became 23 stories,
among them one-line blog intros ("costly-blog-decision") and a two-document Libya story
that split the Libya names with the eight-document one. Each test builds the same small
corpus with the rule switched off (the old behaviour) and on.
"""

from worker.models import CorpusDocument, Story
from worker.stories.corpus import CorpusConfig, build_stories

FLOOD = [
    "River Kessel burst its banks in Valdoria on Monday, flooding the town of Brenmark and "
    "forcing 4,000 residents from their homes.\n\n"
    "Rescue crews in boats searched the flooded streets for stranded families.",
    "The Kessel flood has left Brenmark under two metres of water, officials in Valdoria "
    "said.\n\nThe army sent helicopters to lift residents from rooftops.",
    "Brenmark hospital was evacuated as the Kessel kept rising, Valdoria's health ministry "
    "said.\n\nPatients were moved by bus to clinics in the hills.",
    "Valdoria declared a state of emergency after the Kessel flood swept through Brenmark."
    "\n\nSchools across the province were closed for the week.",
]
ELECTION = (
    "Voters in Ostrava province elected Mirela Danek as governor on Sunday, ending twelve "
    "years of rule by the Civic Alliance.\n\n"
    "Danek promised to cut provincial taxes and rebuild the Ostrava tram network."
)


def _story_with(stories: list[Story], phrase: str) -> Story:
    (story,) = [s for s in stories if any(phrase in fact for fact in s.facts)]
    return story


def test_a_one_line_fragment_after_furniture_joins_its_page_instead_of_becoming_a_story():
    documents = [
        CorpusDocument(
            "a.txt", f"{FLOOD[0]}\n\nAdvertisement\n\nStarting this blog was a costly decision."
        ),
        CorpusDocument("b.txt", FLOOD[1]),
        # A headline-only aggregator item names places: it is a story, not a fragment.
        CorpusDocument(
            "c.txt", f"{ELECTION}\n\nAdvertisement\n\nKorvia Buys Presidential Plane From Mexico"
        ),
    ]
    before = build_stories(documents, config=CorpusConfig(fragment_terms=0))
    assert _story_with(before, "costly decision").facts == (
        "Starting this blog was a costly decision.",
    )

    after = build_stories(documents)
    assert len(after) == len(before) - 1
    assert _story_with(after, "costly decision") == _story_with(after, "River Kessel")
    assert _story_with(after, "Korvia Buys").documents == ("c.txt",)
    assert _story_with(after, "Korvia Buys") != _story_with(after, "Mirela Danek")


def test_a_thin_side_story_folds_into_the_well_supported_story_it_is_close_to():
    side = (
        "Insurers in Valdoria expect claims worth millions after the Brenmark flood, the "
        "Valdorian Insurance Association said.\n\n"
        "Premiums for homes near the Kessel are likely to rise next year, brokers warned."
    )
    documents = [CorpusDocument(f"flood-{i}.txt", text) for i, text in enumerate(FLOOD)]
    documents += [CorpusDocument("side.txt", side), CorpusDocument("election.txt", ELECTION)]

    before = build_stories(documents, config=CorpusConfig(anchor_documents=99))
    assert _story_with(before, "Insurers").documents == ("side.txt",)

    after = build_stories(documents)
    flood = _story_with(after, "River Kessel")
    assert _story_with(after, "Insurers") == flood
    assert flood.documents == (*(f"flood-{i}.txt" for i in range(4)), "side.txt")
    # An unrelated thin story stays apart: folding needs a close centroid.
    assert _story_with(after, "Mirela Danek").documents == ("election.txt",)
