"""Specifics of a sentence: the named entities, numbers and dates a development changes.

What this module is for: the parts of a sentence that say *which* event it reports. The
novelty detector asks whether a sentence brings a name, a figure or a date the story has
never seen; the matcher compares the names an article shares with a story. Numbers are
canonicalised ("$1.25 billion" and "1.25bn dollars" are one figure), dates become
month-day and year keys, and names are runs of capitalised words with headline Title Case
and sentence-initial common words left out.

What it must not do: read files, touch the network, or keep mutable state beyond the
memos of pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from wordfreq import zipf_frequency

from worker.text.terms import STOPWORDS, content_terms, term_weight, tokenize

_CAP_WORD = r"(?:[A-Z][\w'’.-]*|[A-Z]{2,}\d*)"
_ENTITY = re.compile(rf"{_CAP_WORD}(?:\s+(?:of|de|al|bin|von|van|the)?\s*{_CAP_WORD})*")
_ENTITY_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "it",
        "they",
        "we",
        "i",
        "his",
        "her",
        "their",
        "its",
        "but",
        "and",
        "or",
        "so",
        "in",
        "on",
        "at",
        "as",
        "if",
        "when",
        "while",
        "after",
        "before",
        "there",
        "however",
        "meanwhile",
        "according",
        "some",
        "one",
        "two",
        "three",
        "mr",
        "mrs",
        "ms",
        "dr",
        "president",
        "prime",
        "minister",
    ]
) | frozenset(["jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"])


def extract_entities(sentence: str) -> set[str]:
    """Capitalised word sequences and acronyms, normalised to stemmed lower case.

    Sentence-initial capitals are only kept when they are not common words, so "The plane"
    yields nothing while "Kazakhstan said" yields "kazakhstan". Multi-word names are kept
    whole and also contribute their distinctive parts ("Azerbaijan Airlines" gives
    "azerbaijan airlines" and "azerbaijan"), so a later "Azerbaijan" still meets it.
    Names are not stemmed: the suffix stripper turns "States" into "stat" and "George"
    into "georg", which read as rare words and would pass for distinctive names.
    """
    return set(_extract_entities(sentence))


# Bounded like `sentence_features` (the reuse is within an article).
@lru_cache(maxsize=4096)
def _extract_entities(sentence: str) -> frozenset[str]:
    entities: set[str] = set()
    for found in _ENTITY.finditer(sentence):
        words = [w for w in tokenize(found.group(0)) if w not in _ENTITY_STOP]
        words = [w for w in words if w not in STOPWORDS and not _WORD_NUMBER.fullmatch(w)]
        if not words:
            continue
        if found.start() == 0 and len(words) == 1 and zipf_frequency(words[0], "en") > 5.0:
            continue  # a common word that is capitalised only because it starts the sentence
        entities.add(" ".join(words))
        if len(words) > 1:
            entities.update(w for w in words if term_weight(w) >= 2.5)
    return frozenset(entities)


_MULTIPLIERS = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
    "t": 1e12,
}
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_NUMBER_WORDS.update(
    {
        "thirty": 30,
        "forty": 40,
        "fifty": 50,
        "sixty": 60,
        "seventy": 70,
        "eighty": 80,
        "ninety": 90,
        "hundred": 100,
    }
)
_NUMBER = re.compile(
    r"(?P<cur>[$€£¥]|usd|eur|us\$)?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<mult>thousand|million|billion|trillion|mn|bn|tn|[kmbt])\b)?"
    r"(?:\s?(?P<unit>%|percent|per cent|km|kilometers?|kilometres?|miles?|metres?|meters?|"
    r"feet|ft|tons?|tonnes?|people|dead|killed))?",
    re.IGNORECASE,
)
_WORD_NUMBER = re.compile(
    r"\b(?P<tens>twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?P<ones>one|"
    r"two|three|four|five|six|seven|eight|nine))?\b|\b(?P<small>eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(19|20)\d\d$")
# The same digits `\d` matches in the patterns (Unicode decimal digits too).
_DIGIT = re.compile(r"\d")


def _may_name_a_number(sentence: str) -> bool:
    """False only when `_WORD_NUMBER` cannot match: each of its words ends in "ty" or
    "teen" or is "eleven" or "twelve". A few scans in C spare most sentences the slow
    pattern; exact, since under IGNORECASE those letters match only their two cases."""
    lowered = sentence.lower()
    return "ty" in lowered or "teen" in lowered or "eleven" in lowered or "twelve" in lowered


def _canonical_number(value: float) -> str:
    return f"{value:.6g}"


def extract_numbers(sentence: str) -> set[str]:
    """Quantities in canonical form: "$1.25 billion" -> "$1.25e+09", "38" -> "38".

    Years are left to `extract_dates`; small ordinals of prose (one, two...) are skipped
    because they rarely carry a development, but "Thirty-eight" counts as 38 so that a
    spelled-out figure matches its digits.
    """
    numbers: set[str] = set()
    # Every figure has a digit: the test is one fast scan, the figure pattern a slow one,
    # and most sentences of prose have no digit at all.
    figures = _NUMBER.finditer(sentence) if _DIGIT.search(sentence) else ()
    for found in figures:
        raw = found.group("num")
        if _YEAR.match(raw) and not found.group("cur"):
            continue
        value = float(raw.replace(",", ""))
        mult = (found.group("mult") or "").lower()
        if mult:
            value *= _MULTIPLIERS[mult]
        currency = "$" if found.group("cur") else ""
        unit = (found.group("unit") or "").lower()
        suffix = "%" if unit in ("%", "percent", "per cent") else ""
        numbers.add(f"{currency}{_canonical_number(value)}{suffix}")
    words = _WORD_NUMBER.finditer(sentence) if _may_name_a_number(sentence) else ()
    for found in words:
        if found.group("small"):
            numbers.add(_canonical_number(_NUMBER_WORDS[found.group("small").lower()]))
            continue
        value = _NUMBER_WORDS[found.group("tens").lower()]
        if found.group("ones"):
            value += _NUMBER_WORDS[found.group("ones").lower()]
        numbers.add(_canonical_number(value))
    return numbers


_MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_MONTH_RE = (
    r"(?P<m{n}>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|"
    r"aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = re.compile(
    r"\b(?:" + _MONTH_RE.format(n=1) + r"\s+(?P<d1>\d{1,2})\b"
    r"|(?P<d2>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH_RE.format(n=2) + r"\b"
    r"|" + _MONTH_RE.format(n=3) + r"\s+(?P<y3>(?:19|20)\d\d)\b"
    r"|(?P<y4>(?:19|20)\d\d)\b)",
    re.IGNORECASE,
)


def informative_number(number: str) -> bool:
    """Money, percentages and figures of 10 or more; "two sources" or "one child" is prose."""
    if number.startswith("$") or number.endswith("%"):
        return True
    try:
        return float(number) >= 10
    except ValueError:
        return True


def extract_dates(sentence: str) -> set[str]:
    """Calendar references: "Dec. 25" -> "m12-d25", "March 2025" -> "m3", "2025" -> "y2025"."""
    dates: set[str] = set()
    if not _DIGIT.search(sentence):
        return dates  # every form below has a day or a year in digits
    for found in _DATE.finditer(sentence):
        if found.group("d1"):
            month = _MONTHS[found.group("m1").lower().rstrip(".")]
            dates.add(f"m{month}-d{int(found.group('d1'))}")
        elif found.group("d2"):
            month = _MONTHS[found.group("m2").lower().rstrip(".")]
            dates.add(f"m{month}-d{int(found.group('d2'))}")
        elif found.group("y3"):
            month = _MONTHS[found.group("m3").lower().rstrip(".")]
            dates.add(f"m{month}")
            dates.add(f"y{found.group('y3')}")
        elif found.group("y4"):
            dates.add(f"y{found.group('y4')}")
    return dates


@dataclass(frozen=True, slots=True)
class SentenceFeatures:
    """What the matcher and the novelty detector compare for one sentence."""

    text: str
    terms: frozenset[str]
    entities: frozenset[str]
    numbers: frozenset[str]
    dates: frozenset[str]

    @property
    def specifics(self) -> frozenset[str]:
        """Numbers, dates and names: the parts of a sentence a development usually changes."""
        return self.numbers | self.dates | self.entities


@lru_cache(maxsize=4096)
def sentence_features(sentence: str) -> SentenceFeatures:
    """Features of one sentence (terms stemmed, specifics canonicalised).

    Memoised: `decide` and `learn` look at the same sentences one after the other; the
    value is immutable, so sharing it is safe. The reuse is within an article, so a few
    thousand entries do: over the Timeline17 stream 4,096 missed 136,244 times and
    32,768 missed 135,609 times, for 45 MiB more of a deciding process's memory.
    """
    return SentenceFeatures(
        text=sentence,
        terms=frozenset(content_terms(sentence)),
        entities=frozenset(extract_entities(sentence)),
        numbers=frozenset(extract_numbers(sentence)),
        dates=frozenset(extract_dates(sentence)),
    )
