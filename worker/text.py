"""Text primitives for story intelligence: sentences, tokens, term weights, specifics.

What this module is for: turning raw article or corpus text into the small pieces the
story builder, the matcher and the novelty detector compare (sentences, normalised
content terms, a background weight per term, and the "specifics" of a sentence: named
entities, numbers and dates).

What it must not do: read files, touch the network, or keep mutable global state. The
only cache is the memo of the background term weights, which is a pure function of the
word (wordfreq ships its frequency lists inside the wheel, so it loads offline).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from wordfreq import zipf_frequency

# ---------------------------------------------------------------------------------------
# Sentence splitting

# Abbreviations after which a period does not end a sentence (lower-case, without the dot).
_ABBREVIATIONS_TEXT = """
    mr mrs ms dr prof st sen rep gov gen lt col maj capt sgt adm cmdr cpl pvt rev hon
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri
    sat sun inc ltd co corp jr sr vs etc no nos fig approx est dept univ ave blvd mt ft
    e.g i.e a.m p.m u.s u.k u.n e.u u.s.a d.c
"""
_ABBREVIATIONS = frozenset(_ABBREVIATIONS_TEXT.split())
# Words that start a new sentence even after a dotted acronym ("... to the U.S. The ...").
_SENTENCE_STARTERS_TEXT = """
    the a an he she it they we i this that these those but and so yet in on at as if
    when while after before his her their its there however meanwhile
"""
_SENTENCE_STARTERS = frozenset(_SENTENCE_STARTERS_TEXT.split())
_BOUNDARY = re.compile(r"""[.!?…]+["'”’»)\]]*\s+(?=["'“‘«(\[]?[A-Z0-9À-Ý])""")
_LAST_WORD = re.compile(r"(\S+)$")


def _is_abbreviation(before: str, after: str) -> bool:
    """True when the period that ends `before` belongs to an abbreviation, not a sentence."""
    match = _LAST_WORD.search(before)
    if not match:
        return False
    word = match.group(1).lstrip("(\"'“‘«[").rstrip(".").lower()
    if not word:
        return False
    # A single letter is an initial ("Donald J. Trump"); digits end sentences freely.
    if len(word) == 1 and word.isalpha():
        return True
    if word in _ABBREVIATIONS:
        # Dotted acronyms (U.S., U.K.) often end sentences: split when a usual sentence
        # starter follows, keep together before names ("U.S. Secretary").
        if "." in word:
            next_word = after.split(maxsplit=1)[0].strip("\"'“‘«(").lower() if after else ""
            return next_word not in _SENTENCE_STARTERS
        return True
    # Other dotted tokens of single letters ("N.Y.", "a.k.a.") behave like acronyms.
    return bool(re.fullmatch(r"(?:[a-z]\.)+[a-z]", word))


def split_sentences(text: str) -> list[str]:
    """Split text into sentences; line breaks always end a sentence.

    Robust to abbreviations ("U.S.", "Dec.", "Mr."), initials, decimals ("1.25") and
    closing quotes after the final period.
    """
    sentences: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        start = 0
        for boundary in _BOUNDARY.finditer(line):
            head = line[start : boundary.start() + 1]
            if line[boundary.start()] == "." and _is_abbreviation(head, line[boundary.end() :]):
                continue
            piece = line[start : boundary.end()].strip()
            if piece:
                sentences.append(piece)
            start = boundary.end()
        tail = line[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


# ---------------------------------------------------------------------------------------
# Tokens and terms

_STOPWORDS_TEXT = """
    a about above across after again against ago all almost along already also although
    always am among an and another any anyone anything are around as at away back be
    became because become been before being below between both but by can cannot could
    did do does doing done down during each either else enough even ever every few for
    from further had has have having he her here hers herself him himself his how
    however i if in including into is it its itself just last later least less like made
    make many may me might more most much must my myself near nearly never new next no
    nor not now of off often on once one only onto or other others our ours ourselves
    out over own per perhaps put rather really said same say says see seen several shall
    she should since so some still such than that the their theirs them themselves then
    there these they this those though through thus to together told too toward towards
    under until up upon us very via was we well were what whatever when where whether
    which while who whom whose why will with within without would yet you your yours
    yourself according added adding also amid told tell tells telling reported reports
    reportedly week weeks day days month months year years time times today yesterday
    tomorrow monday tuesday wednesday thursday friday saturday sunday january february
    march april may june july august september october november december mr mrs ms dr st
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_TOKEN = re.compile(r"[^\W_]+(?:[-'’.&][^\W_]+)*", re.UNICODE)
_SUFFIXES = ("ings", "ing", "edly", "ies", "ed", "es", "s")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; possessives dropped, dotted acronyms kept whole ("u.s")."""
    tokens: list[str] = []
    for raw in _TOKEN.findall(text):
        token = raw.lower().replace("’", "'")
        if token.endswith("'s"):
            token = token[:-2]
        tokens.append(token)
    return tokens


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """A deliberately light suffix stripper so "admits"/"admitted" and "strikes"/"strike" meet.

    Heavier stemmers (Porter) conflate names ("Kursk", "Aktau") with nothing to gain here.
    """
    if len(token) <= 4 or not token.isalpha():
        return token
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            base = token[: -len(suffix)]
            if suffix == "ies":
                return base + "y"  # "agencies" -> "agency"
            if suffix in ("ed", "ing", "ings", "edly") and len(base) > 4 and base[-1] == base[-2]:
                base = base[:-1]  # "admitted" -> "admit", "planned" -> "plan"
            if suffix == "es" and not base.endswith(("ss", "sh", "ch", "x", "z")):
                base = token[:-1]  # "strikes" -> "strike", but "crashes" -> "crash"
            return base[:-1] if base.endswith("e") else base
    return token[:-1] if token.endswith("e") else token  # "announce" meets "announced"


def content_terms(text: str) -> list[str]:
    """Stemmed tokens without stopwords or bare punctuation, in text order."""
    return list(_content_terms(text))


# A sentence is read by the matcher, by novelty and, when learned, by both again: the
# cache makes that one tokenization instead of four.
@lru_cache(maxsize=32768)
def _content_terms(text: str) -> tuple[str, ...]:
    return tuple(
        stem(token)
        for token in tokenize(text)
        if token not in STOPWORDS and (len(token) > 1 or token.isdigit())
    )


# ---------------------------------------------------------------------------------------
# Background term weights


_SURFACE_SUFFIXES = ("", "e", "s", "es", "ed", "y", "ing")


def _surface_forms(term: str) -> tuple[str, ...]:
    """Words a stem may stand for: "announc" -> "announce", "strik" -> "strike"."""
    if len(term) < 3 or not term.isalpha():
        return (term,)
    return tuple(term + suffix for suffix in _SURFACE_SUFFIXES)


@lru_cache(maxsize=131072)
def term_weight(term: str) -> float:
    """How much a shared term says about topical identity, from its background rarity.

    Uses the Zipf frequency of the word in general English (wordfreq): "the" ~7.7,
    "crash" ~4.5, "Aktau" ~1.2, unseen words 0. Weight = 7 - zipf, floored at 0.1, so a
    rare name weighs ~20x a common verb. Numbers weigh little as terms: they are compared
    as specifics (see `extract_numbers`).
    """
    if term.isdigit():
        return 0.5
    # Terms are stems ("announc", "ukrain"), and wordfreq knows stray misspellings of
    # many of them, so the stem's own frequency badly undercounts the word: the family
    # is as common as its most common surface form.
    zipf = max(zipf_frequency(form, "en") for form in _surface_forms(term))
    return max(0.1, 7.0 - zipf)


def weighted_terms(text: str) -> dict[str, float]:
    """Each distinct content term of `text` with its background weight."""
    return {term: term_weight(term) for term in content_terms(text)}


# ---------------------------------------------------------------------------------------
# Specifics: entities, numbers, dates

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


@lru_cache(maxsize=32768)
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


def _canonical_number(value: float) -> str:
    return f"{value:.6g}"


def extract_numbers(sentence: str) -> set[str]:
    """Quantities in canonical form: "$1.25 billion" -> "$1.25e+09", "38" -> "38".

    Years are left to `extract_dates`; small ordinals of prose (one, two...) are skipped
    because they rarely carry a development, but "Thirty-eight" counts as 38 so that a
    spelled-out figure matches its digits.
    """
    numbers: set[str] = set()
    for found in _NUMBER.finditer(sentence):
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
    for found in _WORD_NUMBER.finditer(sentence):
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


def extract_dates(sentence: str) -> set[str]:
    """Calendar references: "Dec. 25" -> "m12-d25", "March 2025" -> "m3", "2025" -> "y2025"."""
    dates: set[str] = set()
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


@lru_cache(maxsize=32768)
def sentence_features(sentence: str) -> SentenceFeatures:
    """Features of one sentence (terms stemmed, specifics canonicalised).

    Memoised: `decide` and `learn` look at the same sentences one after the other, and
    syndicated copies repeat them; the value is immutable, so sharing it is safe.
    """
    return SentenceFeatures(
        text=sentence,
        terms=frozenset(content_terms(sentence)),
        entities=frozenset(extract_entities(sentence)),
        numbers=frozenset(extract_numbers(sentence)),
        dates=frozenset(extract_dates(sentence)),
    )


def total_weight(terms: Iterable[str]) -> float:
    """Sum of background weights of distinct terms."""
    return sum(term_weight(term) for term in set(terms))
