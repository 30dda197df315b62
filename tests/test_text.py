"""Text primitives (sentence splitting, terms, background weights) and specifics."""

import re
import sys

import pytest

from worker.text import specifics
from worker.text.specifics import extract_dates, extract_entities, extract_numbers
from worker.text.terms import content_terms, split_sentences, term_weight


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("U.S. Secretary Blinken spoke. He left.", ["U.S. Secretary Blinken spoke.", "He left."]),
        (
            "It crashed on Dec. 25 near Aktau. Rescuers came.",
            ["It crashed on Dec. 25 near Aktau.", "Rescuers came."],
        ),
        (
            "Mr. Kirby spoke to Donald J. Trump today. Then he left.",
            ["Mr. Kirby spoke to Donald J. Trump today.", "Then he left."],
        ),
        (
            "The package is $1.25 billion. It is large.",
            ["The package is $1.25 billion.", "It is large."],
        ),
        ("“We will help,” he said. “Always.”", ["“We will help,” he said.", "“Always.”"]),
        ("The aid went to the U.S. The end came.", ["The aid went to the U.S.", "The end came."]),
        ("Line one\nLine two", ["Line one", "Line two"]),
    ],
)
def test_split_sentences_respects_abbreviations_initials_decimals_and_quotes(text, expected):
    assert split_sentences(text) == expected


def test_inflections_meet_on_one_term():
    assert content_terms("announce announced")[0] == content_terms("announced")[0]
    assert content_terms("strikes")[0] == content_terms("strike")[0]
    assert content_terms("admitted")[0] == content_terms("admits")[0]


def test_stopwords_are_not_terms():
    assert content_terms("the and of said on Wednesday") == []


@pytest.mark.parametrize(
    ("rare", "common"), [("aktau", "plane"), ("embraer", "crash"), ("fico", "said")]
)
def test_rare_names_weigh_more_than_common_words(rare, common):
    assert term_weight(rare) > 1.5 * term_weight(common)


@pytest.mark.parametrize(
    ("word", "family"),
    [("announced", "announce"), ("Ukraine", "ukraine"), ("damaged", "damage"), ("rules", "rule")],
)
def test_a_stem_weighs_what_its_word_family_weighs(word, family):
    """Stems ("announc", "ukrain") are not rare names: wordfreq knows stray misspellings
    of some of them, which once made common words weigh like "Aktau"."""
    (stem,) = content_terms(word)
    assert term_weight(stem) <= term_weight(family) + 0.1
    assert term_weight(stem) < term_weight("aktau") / 2


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("A $1.25 billion package", {"$1.25e+09"}),
        ("killing 38 of 67 people", {"38", "67"}),
        ("Thirty-eight passengers died", {"38"}),
        ("It rose 3.5%", {"3.5%"}),
        ("In 2024 it happened", set()),
    ],
)
def test_numbers_are_canonical(sentence, expected):
    assert extract_numbers(sentence) == expected


def test_dates_are_canonical():
    assert extract_dates("on Dec. 25, 2024") == {"m12-d25", "y2024"}
    assert extract_dates("on 23 November") == {"m11-d23"}


def test_entities_keep_names_and_their_distinctive_parts():
    entities = extract_entities("The crash of Azerbaijan Airlines near Aktau was investigated.")
    assert "aktau" in entities
    assert "azerbaijan" in entities
    assert not any(e.startswith("the") for e in entities)


def test_entity_names_are_not_cut_by_the_suffix_stripper():
    """Stemmed, "States" becomes "stat": a rare word that would pass for a telling name."""
    entities = extract_entities("Officials of the United States met George Papadopoulos.")
    assert "united states" in entities
    assert "george papadopoulos" in entities
    assert not {"stat", "georg"} & entities


FIGURE_SENTENCES = [
    "A $1.25 billion package, 3.5% more, for 38 of 67 people on Dec. 25, 2024.",
    "TWENTY-ONE soldiers and Thirty-eight passengers; eleven TWELVE nineteen ninety",
    "Officials counted ٣٨ dead and ３８ injured.",  # digits of other scripts only
    "No figure in this sentence at all, only words about a city and its party.",
    "Forty-two, fifty and sixty-six were counted in March 2025 in twenty places.",
    "Nineteen were hurt.",
    "ELEVEN returned home, and twelve did not.",
]


def test_the_fast_scans_before_the_figure_patterns_lose_nothing(monkeypatch):
    """Numbers and dates found with the digit and number-word pre-tests are those the
    patterns alone find (the pre-tests only spare sentences that cannot match)."""
    quick = [(extract_numbers(s), extract_dates(s)) for s in FIGURE_SENTENCES]
    monkeypatch.setattr(specifics, "_DIGIT", re.compile(""))  # matches every sentence
    monkeypatch.setattr(specifics, "_may_name_a_number", lambda sentence: True)
    slow = [(extract_numbers(s), extract_dates(s)) for s in FIGURE_SENTENCES]
    assert quick == slow
    assert quick[2][0] == {"38"} and quick[3] == (set(), set())


def test_number_words_letters_match_no_other_character_ignoring_case():
    """What makes `_may_name_a_number` exact: under re.IGNORECASE the letters of "ty",
    "teen", "eleven" and "twelve" match no character that lower-cases to another one
    (unlike "s", which also matches "ſ", or "k", the Kelvin sign)."""
    letters = re.compile("[tyenlvw]", re.IGNORECASE)
    odd = [
        c
        for c in map(chr, range(sys.maxunicode + 1))
        if letters.fullmatch(c) and c.lower() not in "tyenlvw"
    ]
    assert odd == []
    assert re.fullmatch("s", "ſ", re.IGNORECASE)  # the kind of character it looks for
