"""dedupe: exact fingerprints, MinHash near-duplicates and LSH band keys on real wire texts.

Fixture texts come from shared/data/seed-followups/dev.jsonl: fu-052 and fu-053 are two
copies of one Reuters story (fu-052 is shorter: it stops before the last paragraphs);
fu-007 and fu-008 are different articles about the same event (Putin admitting Russian
missiles downed the Azerbaijan Airlines plane).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from worker.articles.dedupe import (
    DEFAULT_BANDS,
    estimated_containment,
    estimated_jaccard,
    is_near_duplicate,
    lsh_band_keys,
    minhash_signature,
    shingles,
    signature_from_bytes,
    signature_to_bytes,
    text_fingerprint,
)

ARTICLES = json.loads(
    (Path(__file__).parent / "fixtures" / "dedupe" / "articles.json").read_text("utf-8")
)
REUTERS_LONG = ARTICLES["fu-053"]["text"]
REUTERS_SHORT = ARTICLES["fu-052"]["text"]
AZAL_INDEPENDENT = ARTICLES["fu-007"]["text"]
AZAL_LIGA = ARTICLES["fu-008"]["text"]


def syndicated_copy(text: str) -> str:
    """The same wire text as another site publishes it: own headline, dateline, furniture."""
    return (
        "Kyiv claims hit on Russian drone base\n"
        "Click to Gallery\n"
        "KYIV, June 14 (Reuters) - " + text + "\n"
        "Read More\n(Reporting by Reuters; Editing by World Desk)\nSource link"
    )


def new_first_paragraph(text: str) -> str:
    paragraphs = text.split("\n")
    paragraphs[0] = (
        "Kyiv on Saturday claimed a successful strike on a Russian depot used to store and "
        "repair Iranian-designed attack drones, far from the front line."
    )
    return "\n".join(paragraphs)


def exact_jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


# ---------------------------------------------------------------------------------------
# Exact copies


def test_fingerprint_ignores_case_spacing_punctuation_and_quote_style():
    straight = 'Ukraine said it had "significantly reduced" Russia\'s ability.'
    curly = "UKRAINE  said it had “significantly reduced”\nRussia’s ability"
    assert text_fingerprint(straight) == text_fingerprint(curly)


def test_fingerprint_differs_when_a_word_differs():
    assert text_fingerprint("downed 15 out of 16 drones") != text_fingerprint(
        "downed 14 out of 16 drones"
    )
    assert len(text_fingerprint("x")) == 64


# ---------------------------------------------------------------------------------------
# Near duplicates


def test_syndicated_copy_with_other_headline_dateline_and_furniture_is_near_duplicate():
    original, copy = (
        minhash_signature(REUTERS_LONG),
        minhash_signature(syndicated_copy(REUTERS_LONG)),
    )
    assert estimated_jaccard(original, copy) >= 0.8
    assert is_near_duplicate(copy, original)
    assert is_near_duplicate(original, copy)


def test_copy_with_a_different_first_paragraph_is_near_duplicate():
    original = minhash_signature(REUTERS_LONG)
    rewritten = minhash_signature(new_first_paragraph(REUTERS_LONG))
    assert is_near_duplicate(rewritten, original)


def test_shortened_wire_copy_after_the_full_one_is_a_duplicate():
    """fu-052 is fu-053 minus its last paragraphs: nothing in it is new once 053 is known."""
    short, full = minhash_signature(REUTERS_SHORT), minhash_signature(REUTERS_LONG)
    assert estimated_jaccard(short, full) < 0.8  # plain Jaccard alone would miss it
    assert estimated_containment(short, full) >= 0.85
    assert is_near_duplicate(short, full)


def test_longer_version_after_the_short_one_is_not_a_duplicate():
    """053 adds paragraphs to 052 (the 15-of-16 drones figure): novelty must see them."""
    short, full = minhash_signature(REUTERS_SHORT), minhash_signature(REUTERS_LONG)
    assert not is_near_duplicate(full, short)


def test_different_articles_about_the_same_event_are_not_near_duplicates():
    independent, liga = minhash_signature(AZAL_INDEPENDENT), minhash_signature(AZAL_LIGA)
    assert estimated_jaccard(independent, liga) < 0.1
    assert not is_near_duplicate(independent, liga)
    assert not is_near_duplicate(liga, independent)


def test_unrelated_stories_are_not_near_duplicates():
    assert not is_near_duplicate(minhash_signature(REUTERS_LONG), minhash_signature(AZAL_LIGA))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (REUTERS_SHORT, REUTERS_LONG),
        (REUTERS_LONG, syndicated_copy(REUTERS_LONG)),
        (REUTERS_LONG, new_first_paragraph(REUTERS_LONG)),
        (AZAL_INDEPENDENT, AZAL_LIGA),
    ],
)
def test_estimated_jaccard_tracks_exact_jaccard(a: str, b: str):
    estimate = estimated_jaccard(minhash_signature(a), minhash_signature(b))
    assert abs(estimate - exact_jaccard(a, b)) < 0.12  # 128 permutations: sd <= 0.045


def test_empty_texts_are_never_duplicates_and_have_no_band_keys():
    empty = minhash_signature("  ...  ")
    assert empty.empty
    assert estimated_jaccard(empty, empty) == 0.0
    assert not is_near_duplicate(empty, minhash_signature(""))
    assert lsh_band_keys(empty) == []


def test_short_texts_are_one_shingle():
    assert shingles("Breaking: quake hits") == {b"breaking quake hits"}
    assert is_near_duplicate(
        minhash_signature("Breaking: quake hits"), minhash_signature("BREAKING — Quake hits!")
    )


# ---------------------------------------------------------------------------------------
# LSH band keys and storage


def test_band_keys_are_short_numbered_and_one_per_band():
    keys = lsh_band_keys(minhash_signature(REUTERS_LONG))
    assert len(keys) == DEFAULT_BANDS
    assert len(set(keys)) == DEFAULT_BANDS
    assert [key.split(":")[0] for key in keys] == [f"{b:02d}" for b in range(DEFAULT_BANDS)]
    assert all(len(key) == 19 for key in keys)


@pytest.mark.parametrize(
    "copy",
    [REUTERS_SHORT, syndicated_copy(REUTERS_LONG), new_first_paragraph(REUTERS_LONG)],
)
def test_copies_share_a_band_key_so_sql_finds_them_as_candidates(copy: str):
    stored = set(lsh_band_keys(minhash_signature(REUTERS_LONG)))
    assert stored & set(lsh_band_keys(minhash_signature(copy)))


def test_different_articles_share_no_band_key():
    assert not set(lsh_band_keys(minhash_signature(AZAL_INDEPENDENT))) & set(
        lsh_band_keys(minhash_signature(AZAL_LIGA))
    )


def test_band_count_is_tunable():
    keys = lsh_band_keys(minhash_signature(REUTERS_LONG), bands=16)
    assert len(keys) == 16
    with pytest.raises(ValueError):
        lsh_band_keys(minhash_signature(REUTERS_LONG), bands=0)


def test_signature_bytes_round_trip():
    signature = minhash_signature(REUTERS_LONG)
    data = signature_to_bytes(signature)
    assert len(data) == 5 + 4 * 128
    assert signature_from_bytes(data) == signature


@pytest.mark.parametrize("data", [b"", b"\x01" * 10, b"\x09" + b"\x00" * (4 + 512)])
def test_malformed_signature_bytes_are_rejected(data: bytes):
    with pytest.raises(ValueError):
        signature_from_bytes(data)


def test_signatures_are_stable_across_processes_and_versions():
    """Stored band keys only work if the same text always hashes the same way.

    Changing permutations, seed, scheme, shingling or normalization changes this value;
    that needs a migration recomputing stored signatures, so it must be deliberate.
    """
    digest = hashlib.sha256(signature_to_bytes(minhash_signature(REUTERS_LONG))).hexdigest()
    assert digest == GOLDEN_SIGNATURE_SHA256


GOLDEN_SIGNATURE_SHA256 = "902d75433599cae3fb5398631f7b44119d555b98a13c23c16fcda958434e6266"
