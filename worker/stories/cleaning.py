"""Corpus document text -> the paragraphs worth reading.

What this module is for: dropping what a news page repeats or wraps around its article
(photo captions, galleries, "Read More", share lines, bylines, correction notes,
datelines) and tagging each kept paragraph with the furniture-delimited *block* it sits
in, because aggregator pages put one item per block.

What it must not do: group paragraphs into stories (that is `worker.stories.grouping`), read
files, or know any particular site. Every pattern here describes page furniture in
general, not a corpus.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from worker.models import CorpusDocument

# Site furniture: navigation, share and credit lines that any news page may carry.
_FURNITURE = re.compile(
    r"""^(?:
        read\ more|continue\ reading|click\ to\ gallery|source\ link|leave\ a\ review
        |click\ here|share\ this.*|advertisement|related(?:\ articles?)?:?|sign\ up.*
        |subscribe.*|newsletter.*|comments?|print|email|share|tweet|-+|—+|•
        |live\ (?:briefing|updates|blog)\b.*
    )[.!…:]?$""",
    re.IGNORECASE | re.VERBOSE,
)
_FURNITURE_PHRASES = re.compile(
    r"click here|follow .{0,40}coverage|this (?:story|article) has been (?:corrected|updated)"
    r"|all rights reserved|©|copyright|https?://|www\.|contributed to this report"
    r"|^with reporting by|^\w+(?: and \w+)? reported from"
    # Bylines and wire credits: who wrote or edited the report, never what happened. A
    # credit is a whole line, or in parentheses ("Gene editing by Chinese scientists ...",
    # "reporting by local media says 40 died" are news).
    r"|^\(?\s*(?:additional reporting|reporting|writing|editing|edited|compiled) by"
    r" (?-i:[A-Z])[^.()]{0,80}\)?\.?$"
    r"|\([^()]*\b(?:additional reporting|reporting|writing|editing) by (?-i:[A-Z])[^()]*\)"
    r"|^editor['’]?s note\b|^(?:source|photo credit)\s*:[^.]{0,80}$"
    r"|\bread more (?:about|on|in)\b"
    # "By John Smith" or "By John Smith, Reuters" as the whole line ("By Tuesday, the
    # rebels had taken Brega" is news).
    r"|^by (?-i:[A-Z][\w.'’-]+)(?: (?-i:[A-Z][\w.'’-]+)){1,3}"
    r"(?:,\s*(?-i:[A-Z])[\w&.'’-]*(?:\s+(?-i:[A-Z])[\w&.'’-]*){0,3})?$",
    re.IGNORECASE,
)
# Captions: a parenthesised photo credit at the end, or "In this photo ..." openings.
_CAPTION_CREDIT = re.compile(
    r"\((?:[^()]*\b(?:photo|(?-i:AP|AFP|EPA)|Reuters|Getty|via|pictured|Press Service|image)"
    r"\b[^()]*)\)\s*$",
    re.IGNORECASE,
)
_CAPTION_OPENING = re.compile(
    r"^(?:in this (?:handout |file )?(?:photo|image|picture|handout)|pictured|above:|"
    r"photo:|image:)",
    re.IGNORECASE,
)
_TRAILING_FURNITURE = re.compile(r"\s*…?\s*(?:continue reading|read more)\s*$", re.IGNORECASE)
_TERMINAL = re.compile(r"""[.!?:…"”’'»)]$""")
# A wire dateline ("KYIV, Ukraine (AP) — "): where the reporter filed from, not what the
# story is about; left in, the city would tie the article to every story set there.
_DATELINE = re.compile(
    r"^[A-Z][A-Z .'’-]{2,}(?:,\s*[A-Z][\w .'’-]{1,30})?\s*(?:\([\w/ .]{1,20}\))?\s*[—–]\s*"
)


# A sentence that only says who reported the previous one ("This was reported by Radio
# Azattyk, writes UNN.", "The General Staff announced this, Ukrinform reports."): it names
# an outlet, and a new outlet is not a new fact.
_ATTRIBUTION = re.compile(
    r"^(?:this|it) (?:was|is|has been) (?:reported|announced|stated|confirmed) by [^.;:]{1,60}\.?$"
    r"|\b(?:reported|announced|stated|said|confirmed) (?:this|that)[,.]?"
    r"(?: [\w-]+){0,3}(?: (?:reports|reported|writes|wrote|says|said))?\.?$",
    re.IGNORECASE,
)
_ATTRIBUTION_WORDS = 14
# Where a sentence names its source rather than an actor: "according to Interfax",
# "news agency TASS has reported", "Yle reported", "told Reuters".
_NAME = r"([A-Z][\w&.'’-]*(?:\s+[A-Z][\w&.'’-]*){0,2})"
_SOURCE = re.compile(
    "|".join(
        [
            r"(?:according to|citing|cited by|reported by|quoted by|told|writes|wrote)\s+"
            r"(?:the\s+)?(?:[A-Z]\w*['’]s\s+)?" + _NAME,
            r"(?:agency|outlet|broadcaster|newspaper|daily|website|channel)\s+" + _NAME,
            _NAME + r"\s+(?:reports|reported|has reported|writes|wrote)\b",
        ]
    )
)


def without_dateline(sentence: str) -> str:
    """The sentence without a wire dateline ("KYIV, Ukraine (AP) — "), for quoting."""
    return _DATELINE.sub("", sentence, count=1)


def source_names(sentence: str) -> set[str]:
    """Lower-cased words of the outlets a sentence cites as its source: a new outlet
    reporting a known fact brings no new name to the story."""
    return {
        word.lower()
        for found in _SOURCE.finditer(sentence)
        for name in found.groups()
        if name
        for word in name.split()
    }


def is_furniture_sentence(sentence: str) -> bool:
    """Page furniture, a photo caption or credit, or a bare attribution: never a fact.

    For article sentences (the corpus goes through `clean_paragraphs`): the extractor
    keeps some of these, and novelty must not quote "Photo: EPA / ..." as what is new.
    """
    line = sentence.strip()
    if _FURNITURE.match(line) or _FURNITURE_PHRASES.search(line):
        return True
    if _CAPTION_CREDIT.search(line) or _CAPTION_OPENING.match(line):
        return True
    return len(line.split()) <= _ATTRIBUTION_WORDS and bool(_ATTRIBUTION.search(line))


def _is_headline(line: str) -> bool:
    """A title-case line of five words or more ("Tajikistan Buys Presidential Plane ...")."""
    words = [w for w in line.split() if w[0].isalpha()]
    if len(words) < 5:
        return False
    capitalised = sum(1 for w in words if w[0].isupper())
    return capitalised / len(words) >= 0.6


def _line_kind(line: str) -> str:
    """'text', 'headline', 'furniture' (ends a block) or 'caption' (dropped silently)."""
    if _FURNITURE.match(line) or _FURNITURE_PHRASES.search(line):
        return "furniture"
    if _CAPTION_CREDIT.search(line) or _CAPTION_OPENING.match(line):
        return "caption"
    if _TERMINAL.search(line):
        return "text" if len(line.split()) > 4 else "furniture"
    # No closing punctuation: a headline, a byline/section label, or a photo caption.
    if _is_headline(line):
        return "headline"
    return "caption" if len(line.split()) > 4 else "furniture"


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One kept line of a corpus document."""

    document: str
    index: int  # position among the document's kept paragraphs
    block: int  # furniture-delimited block within the document
    text: str
    headline: bool


def _normalise(line: str) -> str:
    return " ".join(line.split())


def clean_paragraphs(document: CorpusDocument) -> list[Paragraph]:
    """The document's kept paragraphs, each tagged with its furniture-delimited block."""
    lines = [_normalise(line) for line in document.text.splitlines()]
    counts = Counter(line.lower() for line in lines if line)
    paragraphs: list[Paragraph] = []
    block = 0
    for raw in lines:
        if not raw:
            continue
        line = _TRAILING_FURNITURE.sub("", raw).strip()
        ends_block = line != raw  # "… Continue reading" closes an aggregator item
        kind = _line_kind(line) if line else "furniture"
        if kind == "furniture":
            if paragraphs and paragraphs[-1].block == block:
                block += 1
            continue
        # A line the page repeats verbatim is a caption or a pull quote: pages repeat
        # their galleries, never their body text.
        if kind == "caption" or counts[line.lower()] > 1:
            continue
        text = _DATELINE.sub("", line) if kind == "text" else line
        paragraphs.append(
            Paragraph(document.name, len(paragraphs), block, text, kind == "headline")
        )
        if ends_block:
            block += 1
    return paragraphs
