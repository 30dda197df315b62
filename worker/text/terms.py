"""Text primitives for story intelligence: sentences, tokens and term weights.

What this module is for: turning raw article or corpus text into the small pieces the
story builder, the matcher and the novelty detector compare (sentences, normalised
content terms and a background weight per term). The specifics of a sentence (named
entities, numbers, dates) are in `worker.text.specifics`.

What it must not do: read files, touch the network, or keep mutable global state. The
only cache is the memo of the background term weights, which is a pure function of the
word (wordfreq ships its frequency lists inside the wheel, so it loads offline).
"""

from __future__ import annotations

import re
from functools import lru_cache

from wordfreq import get_frequency_dict, zipf_frequency

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


# An article's text is read up to this many characters. Real articles stay far below (the
# 99th percentile of Timeline17's 4,565 is 53,000); past it is a page that is not one
# article (a live blog's whole archive, a document dump), and reading all of it would
# cost a task a minute and teach its story thousands of sentences.
MAX_ARTICLE_CHARS = 100_000


def bounded_text(text: str, max_chars: int = MAX_ARTICLE_CHARS) -> str:
    """The text up to `max_chars`, cut after the last line or sentence that fits."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    cut = max(head.rfind("\n"), head.rfind(". "))
    return head[: cut + 1] if cut > max_chars // 2 else head


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
    lowered = text.lower()
    if len(lowered) != len(text):
        return _tokenize_each(text)  # a letter lower-cased to two ("İ"): token by token
    # Lower-casing keeps letters letters one for one, and both apostrophes join words in
    # _TOKEN, so the whole text is prepared at once: the same tokens, in a third of the time.
    tokens = _TOKEN.findall(lowered.replace("’", "'"))
    return [token[:-2] if token.endswith("'s") else token for token in tokens]


def _tokenize_each(text: str) -> list[str]:
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
# cache makes that one tokenization instead of four. Within an article, so a few thousand
# entries do (see `sentence_features`).
@lru_cache(maxsize=4096)
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
    zipf = max(_zipf(form) for form in _surface_forms(term))
    return max(0.1, 7.0 - zipf)


@lru_cache(maxsize=1)
def _frequencies() -> dict[str, float]:
    return get_frequency_dict("en", "best")


def _zipf(word: str) -> float:
    """wordfreq's Zipf frequency of the word. Most surface forms tried are not words
    ("crashe", "announcs"); a plain lower-case word absent from its list is 0.0, which
    `zipf_frequency` only finds after tokenizing it (checked equal for every surface form
    of Timeline17's 55,712 terms), so it is answered here, 3 in 4 lookups at no cost."""
    if word.isascii() and word.isalpha() and word.islower() and word not in _frequencies():
        return 0.0
    return zipf_frequency(word, "en")


def weighted_terms(text: str) -> dict[str, float]:
    """Each distinct content term of `text` with its background weight."""
    return {term: term_weight(term) for term in content_terms(text)}
