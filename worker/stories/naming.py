"""How a story built from a corpus is named: its key terms (the rare words that tell it
apart from the other stories), a readable id made of the first three, and a title taken
from a sentence that stands alone (not "However, ..." or "The incident highlights ...").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence

from worker.stories.cleaning import Paragraph
from worker.stories.term_space import TermSpace, cosine, names
from worker.text.terms import content_terms, split_sentences, tokenize

# Words that make a sentence lean on the one before it ("The incident highlights...",
# "However, ..."): such a sentence cannot stand alone as a title.
_LEANING_OPENERS = frozenset(
    [
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "they",
        "their",
        "he",
        "she",
        "his",
        "her",
        "however",
        "meanwhile",
        "but",
        "and",
        "also",
        "still",
        "yet",
        "instead",
        "moreover",
        "furthermore",
        "such",
        "both",
        "then",
        "thus",
        "so",
    ]
)
_LEANING_NOUNS = re.compile(
    r"^the (?:incident|event|move|attack|crash|meeting|decision|statement|report|case|"
    r"accident|situation|latest|same|official|source|two)\b",
    re.IGNORECASE,
)
# Prepositions that open a scene-setting clause before the news ("Following ..., X did").
_SCENE_SETTERS = frozenset(
    [
        "following",
        "after",
        "amid",
        "amidst",
        "despite",
        "during",
        "in",
        "on",
        "as",
        "with",
        "while",
        "since",
        "before",
    ]
)
_TITLE_WORDS = 24  # longer opening sentences are cut at a clause boundary
_TITLE_CHARS = 140


# ---------------------------------------------------------------------------------------
# Naming


def surface_forms(texts: Sequence[str]) -> dict[str, str]:
    """Most frequent original spelling per stemmed term, for readable key terms."""
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for text in texts:
        for word in re.findall(r"[^\W_]+(?:[-'’.&][^\W_]+)*", text):
            for term in content_terms(word):
                forms[term][word.rstrip(".").removesuffix("’s").removesuffix("'s")] += 1
    return {term: counts.most_common(1)[0][0] for term, counts in forms.items()}


def choose_key_terms(
    paragraphs: Sequence[Paragraph],
    space: TermSpace,
    story_frequency: Mapping[str, int],
    stories: int,
    limit: int,
) -> list[str]:
    """Stemmed terms that say what this story is, best first.

    Score: background rarity x how many of the story's paragraphs use the term x how few
    of the corpus's stories do (a term every story uses names none of them).
    """
    used = Counter(term for p in paragraphs for term in set(content_terms(p.text)))
    # Names (capitalised mid-sentence) say what a story is better than rare common words:
    # "Sweden" names the story, "antagonistic" only colours it.
    named = {word for name in names((p.text for p in paragraphs), space) for word in name}
    scored = {
        term: (2.0 if term in named else 1.0)
        * space.background(term)
        * math.sqrt(count)
        * math.log(1.0 + stories / story_frequency.get(term, 1))
        for term, count in used.items()
        if not term.isdigit() and space.background(term) >= 1.5
    }
    return sorted(scored, key=lambda term: (-scored[term], term))[:limit]


def slug(words: Sequence[str]) -> str:
    """A readable ASCII id from key terms ("Andøya" -> "andoya")."""
    ascii_words = [
        unicodedata.normalize("NFKD", w.replace("ø", "o").replace("Ø", "O"))
        .encode("ascii", "ignore")
        .decode()
        for w in words
    ]
    parts = [re.sub(r"[^a-z0-9]+", "-", w.lower()).strip("-") for w in ascii_words]
    return "-".join(p for p in parts if p) or "story"


def _stands_alone(sentence: str) -> bool:
    """A sentence a reader understands without the one before it (usable as a title)."""
    words = tokenize(sentence)
    if len(words) < 5 or sentence[0] in "\"'“‘«(":
        return False
    return words[0] not in _LEANING_OPENERS and not _LEANING_NOUNS.match(sentence)


def _shorten(sentence: str) -> str:
    """Drop a scene-setting opening clause, then cut a long sentence at a clause boundary.

    "Amidst an ongoing dispute over gas transit, Zelenskyy accused Fico of..." reads as a
    headline once the opening clause goes; a cut never falls mid-word.
    """
    opener, _, rest = sentence.partition(", ")
    if (
        rest
        and tokenize(opener)[0] in _SCENE_SETTERS
        and len(rest.split()) >= 6
        and rest[0].isupper()
    ):
        sentence = rest
    words = sentence.split()
    if len(words) <= _TITLE_WORDS and len(sentence) <= _TITLE_CHARS:
        return sentence
    head = " ".join(words[:_TITLE_WORDS])[:_TITLE_CHARS]
    for mark in (",", ";", " – ", " — "):
        cut = head.rfind(mark)
        if cut >= 40:
            return head[:cut].rstrip() + "…"
    return head.rsplit(" ", 1)[0].rstrip(",;:") + "…"


def story_title(
    paragraphs: Sequence[Paragraph], space: TermSpace, openings: Collection[tuple[str, int]]
) -> str:
    """The story's headline when a document gives one, else its most central opening.

    Candidates are the first sentences of paragraphs that stand alone; those that open a
    block (an article or an aggregator item) are preferred, because news leads are
    written to be read alone. Among them the one closest to the whole story wins, with
    long sentences discounted.
    """
    centre = space.vector(p.text for p in paragraphs)
    headlines = [p.text for p in paragraphs if p.headline]
    if headlines:
        return max(headlines, key=lambda h: (cosine(space.vector([h]), centre), h))
    best, best_score = "", -1.0
    for paragraph in paragraphs:
        sentences = split_sentences(paragraph.text)
        if not sentences or not _stands_alone(sentences[0]):
            continue
        sentence = sentences[0]
        score = cosine(space.vector([sentence]), centre)
        score *= 2.0 if (paragraph.document, paragraph.index) in openings else 1.0
        score /= max(1.0, len(sentence.split()) / _TITLE_WORDS)
        if score > best_score:
            best, best_score = sentence, score
    if not best:
        best = next((s for p in paragraphs for s in split_sentences(p.text)), "")
    return _shorten(best)
