"""Novelty: new numbers and names are new; copies and paraphrases are not."""
# ruff: noqa: E501  (fixture sentences are quoted whole, as news text reads)

import pytest

from worker.decide.novelty import NoveltyConfig, assess, assess_sentence, known_from
from worker.text.specifics import sentence_features

FACTS = [
    "An Azerbaijan Airlines Embraer 190 crashed near Aktau in Kazakhstan, killing 38 of 67 people on board.",
    "The plane was flying from Baku to Grozny when it was diverted.",
    "Kazakhstan set up a government commission to investigate the crash.",
]
CONFIG = NoveltyConfig()


@pytest.mark.parametrize(
    ("title", "text", "is_new"),
    [
        (
            None,
            "An Azerbaijan Airlines Embraer 190 crashed near Aktau in Kazakhstan, killing 38 of 67 people on board.",
            False,
        ),
        (
            None,
            "The Embraer 190 of Azerbaijan Airlines crashed near Aktau, Kazakhstan; 38 of the 67 people on board died.",
            False,
        ),
        (
            None,
            "Kazakhstan's transport ministry published an interim report finding damage from 412 warhead fragments.",
            True,
        ),
        (
            None,
            "ICAO director Nicolas Rallo praised the Kazakh investigation of the Aktau crash.",
            True,
        ),
    ],
    ids=["copy", "paraphrase", "new-number", "new-name"],
)
def test_sentence_level_novelty(title, text, is_new):
    novelty = assess(known_from(FACTS, CONFIG), title, text, CONFIG)
    assert novelty.is_new is is_new
    if is_new:
        assert 1 <= len(novelty.new_facts) <= 3
        assert all(fact in text for fact in novelty.new_facts)
    else:
        assert novelty.new_facts == ()


def test_learned_copy_is_not_new():
    knowledge = known_from(FACTS, CONFIG)
    text = "Kazakhstan's transport ministry published an interim report finding damage from 412 warhead fragments."
    assert assess(knowledge, None, text, CONFIG).is_new
    knowledge.add(text, CONFIG)
    assert not assess(knowledge, None, text, CONFIG).is_new


@pytest.mark.parametrize(
    "text",
    [
        "Vladimir Putin said the crash of the Embraer 190 near Aktau was a tragedy for Azerbaijan Airlines.",
        "Kazakhstan's commission investigating the Aktau crash met with Zelenskiy and Putin again.",
        "Kazakhstan's commission investigating the Aqtau crash met with Zelensky and Putin again.",
    ],
    ids=["first-name-of-known-person", "spelling-variant", "variant-in-the-second-letter"],
)
def test_known_people_under_other_spellings_are_not_new(text):
    facts = [*FACTS, "Putin and Zelensky both commented on the Aktau crash of the Embraer 190."]
    assert not assess(known_from(facts, CONFIG), None, text, CONFIG).is_new


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("zelenskiy", "zelensky"),  # one letter more
        ("zelensk", "zelensky"),  # one letter less
        ("zelenska", "zelensky"),  # one letter changed, at the end
        ("aqtau", "aktau"),  # one letter changed, inside
        ("zelenskyy", "zelensky"),
        ("zelenksy", None),  # two letters swapped: two edits
        ("aktaus", "aktau"),
        ("kursk", None),  # unknown
    ],
)
def test_known_spelling_finds_every_one_edit_variant(word, expected):
    knowledge = known_from(["Zelensky spoke with Putin about the crash near Aktau."], CONFIG)
    assert knowledge.known_spelling(word) == expected


def test_a_spelling_learned_later_is_found_and_the_choice_does_not_depend_on_order():
    knowledge = known_from(["Officials in Aktau met."], CONFIG)
    assert knowledge.known_spelling("grozni") is None
    knowledge.add("The plane was bound for Grozny in Chechnya.", CONFIG)
    assert knowledge.known_spelling("grozni") == "grozny"
    # Two known variants: the alphabetically first, however they were learned.
    first, second = "Groznu officials met the press.", "Rescuers flew from Grozny to Aktau."
    for facts in ([first, second], [second, first]):
        assert known_from(facts, CONFIG).known_spelling("grozna") == "groznu"


def test_the_first_name_of_a_known_person_is_no_new_name():
    """ "Ukrainian President Volodymyr Zelenskiy" names the known Zelensky, first name and all."""
    facts = [*FACTS, "Zelensky accused Fico of acting on Putin's orders over the Aktau crash."]
    text = "Kazakhstan's commission said Ukrainian President Volodymyr Zelenskiy raised the Aktau crash."
    novelty = assess(known_from(facts, CONFIG), None, text, CONFIG)
    assert not novelty.is_new, novelty.reasons


def test_a_new_first_name_before_a_known_surname_is_a_new_person():
    """The story knows Moammar Gaddafi: "Saif Gaddafi" is his son, news; "Muammar Gaddafi"
    is the known man under another spelling."""
    facts = ["Rebels said Moammar Gaddafi had fled Tripoli as fighters took the capital."]
    relative = "Rebels said Saif Gaddafi was captured by fighters near the southern border."
    same = "Rebels said Muammar Gaddafi was captured by fighters near the southern border."
    knowledge = known_from(facts, CONFIG)
    assert assess_sentence(knowledge, relative, CONFIG).new_specifics == ("saif",)
    assert assess_sentence(knowledge, same, CONFIG).new_specifics == ()


def test_codes_one_digit_apart_are_different_things_not_spellings():
    """S-300 is not S-400: a sentence about S-300 systems is not covered by one about
    S-400s, so the story learns it (and its figures) instead of dropping it as a copy."""
    known = "Officials said Russia moved S-400 systems and Su-34 jets to the base near Kursk."
    text = "Officials said Russia moved S-300 systems and Su-35 jets to the base near Kursk."
    knowledge = known_from([known], CONFIG)
    assert knowledge.coverage(sentence_features(text)) < CONFIG.duplicate
    assert knowledge.add(text, CONFIG)


def test_a_known_common_word_does_not_make_a_new_place_known():
    """The story knows "airport", not "Mozdok Airport": the place is news."""
    facts = [*FACTS, "The plane tried to land at the airport in Makhachkala before the crash."]
    text = "Investigators said the plane had first been refused landing at Mozdok Airport near the border."
    novelty = assess(known_from(facts, CONFIG), None, text, CONFIG)
    assert novelty.is_new
    assert any("mozdok" in reason for reason in novelty.reasons)


def test_a_transliteration_still_covers_the_sentence_that_reported_it():
    """Coverage reads "Zelenskiy" as the known "Zelensky": a rewrite of a known claim
    under another spelling is not a new claim."""
    known = "Zelensky accused Slovak Prime Minister Fico of acting on Putin's orders to cut off electricity."
    knowledge = known_from([*FACTS, known], CONFIG)
    respelled = known_from([*FACTS, known.replace("Zelensky", "Zelenskiy")], CONFIG)
    text = "Zelenskiy accused Slovak Prime Minister Fico of acting on orders from Moscow over electricity."
    features = sentence_features(text)
    # Not equal: the respelled word weighs what the story's spelling weighs.
    assert knowledge.coverage(features) == pytest.approx(respelled.coverage(features), abs=0.02)
    assert not assess(knowledge, None, text, CONFIG).is_new


def test_new_number_in_the_lead_makes_a_development_despite_background_body():
    text = (
        "Kazakhstan's commission said 412 fragments of a warhead were found in the Aktau wreckage. "
        "An Azerbaijan Airlines Embraer 190 crashed near Aktau in Kazakhstan, killing 38 of 67 people on board. "
        "The plane was flying from Baku to Grozny when it was diverted."
    )
    novelty = assess(known_from(FACTS, CONFIG), None, text, CONFIG)
    assert novelty.is_new
    assert novelty.new_facts[0].startswith("Kazakhstan's commission said 412")
    assert "412" in " ".join(novelty.reasons)


def test_furniture_before_the_lead_does_not_push_the_development_out_of_it() -> None:
    """A syndicated page that opens with "Updated: 2 hours ago. Share this story." still
    leads with its news: short fragments take no lead slot."""
    from pathlib import Path  # noqa: PLC0415

    from worker.articles.extract import extract_page  # noqa: PLC0415
    from worker.decide.tracker import Tracker  # noqa: PLC0415
    from worker.models import Article  # noqa: PLC0415
    from worker.stories.corpus import build_stories  # noqa: PLC0415
    from worker.stories.folder import read_corpus  # noqa: PLC0415

    repo = Path(__file__).resolve().parent.parent
    page = (repo / "tests" / "fixtures" / "site" / "article-development.html").read_text()
    copy = page.replace("<h1>", "<p>Updated: 2 hours ago. Share this story.</p><h1>")
    tracker = Tracker(build_stories(read_corpus(repo / "config" / "corpus")))
    extracted = extract_page(copy, url="https://news.example/copy")
    decision = tracker.decide(Article(id="copy", title=extracted.title, text=extracted.text))
    assert decision.new_development


@pytest.mark.parametrize(
    "furniture",
    [
        "Photo: EPA / GRIGORY SYSOEV / SPUTNIK / KREMLIN POOL",
        "This was reported by Radio Azattyk, writes UNN.",
        "The commission announced this, Ukrinform reports.",
        "Ilham Aliyev and Vladimir Putin meet in Dushanbe (Photo: Presidential Administration)",
    ],
    ids=["photo-credit", "reported-by", "announced-this", "caption-credit"],
)
def test_credits_and_attributions_are_not_new_facts(furniture):
    """They name outlets and photographers the story never saw, and are still no news."""
    knowledge = known_from(FACTS, CONFIG)
    known = "An Azerbaijan Airlines Embraer 190 crashed near Aktau in Kazakhstan, killing 38 of 67 people on board."
    result = assess(knowledge, None, f"{known} {furniture}", CONFIG)
    assert not result.is_new
    assert furniture not in result.new_facts


@pytest.mark.parametrize(
    "text",
    [
        "Kazakh investigators said that fragments of a Pantsir missile were found in the wreck near Aktau.",
        "It was confirmed that 412 fragments of a Pantsir missile were found in the wreck near Aktau.",
        "Putin said that, according to the data, Pantsir missiles hit the plane near Aktau.",
        "Investigators found 412 fragments of a Pantsir missile in the wreck near Aktau (the capital).",
    ],
    ids=["said-that", "it-was-confirmed-that", "said-that-comma", "parenthesis-not-a-credit"],
)
def test_a_sentence_reporting_what_someone_said_is_still_a_fact(text):
    knowledge = known_from(FACTS, CONFIG)
    assert assess(knowledge, None, text, CONFIG).is_new


def test_the_outlet_a_sentence_cites_is_not_a_new_name():
    """ "Russian news agency TASS has reported" names a source, not a new actor."""
    knowledge = known_from(FACTS, CONFIG)
    text = (
        "Rescue work continued at the crash site near Aktau, Russian news agency TASS has reported."
    )
    assert not assess(knowledge, None, text, CONFIG).is_new
