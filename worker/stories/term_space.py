"""The vocabulary of one corpus: term weights, passage vectors and distinctive names.

What this module is for: the generic signals `worker.stories.grouping` and
`worker.stories.corpus` compare passages with: how rare a word is in general English
(wordfreq) and how few passages of this corpus use it, cosine similarity of such
vectors, and the names that tell a story.

What it must not do: group, name or build stories, read files, or know any corpus.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from wordfreq import zipf_frequency

from worker.stories.cleaning import Paragraph
from worker.text.specifics import extract_entities
from worker.text.terms import STOPWORDS, content_terms, split_sentences, stem, tokenize

Vector = dict[str, float]


class TermSpace:
    """Weight of each stemmed term of one corpus: background rarity x corpus spread.

    Background rarity comes from the word as it is written (its most common surface form
    in the corpus), not from the stem: stems such as "provid" or "ukrain" are not English
    words and would look as rare as a name. Spread is a smoothed inverse block frequency:
    it discounts words every passage of this corpus shares ("Ukraine" in a corpus about the
    war), which the background model alone cannot know.
    """

    def __init__(self, blocks: Sequence[Sequence[Paragraph]]) -> None:
        zipf: dict[str, float] = {}
        frequency: Counter[str] = Counter()
        for block in blocks:
            seen: set[str] = set()
            for paragraph in block:
                for token in tokenize(paragraph.text):
                    if token in STOPWORDS or (len(token) < 2 and not token.isdigit()):
                        continue
                    term = stem(token)
                    seen.add(term)
                    zipf[term] = max(zipf.get(term, 0.0), zipf_frequency(token, "en"))
            frequency.update(seen)
        total = len(blocks)
        self._background = {
            term: 0.5 if term.isdigit() else max(0.1, 7.0 - value) for term, value in zipf.items()
        }
        self._spread = {
            term: math.log((total + 1) / (count + 0.5)) / math.log((total + 1) / 1.5)
            for term, count in frequency.items()
        }

    def background(self, term: str) -> float:
        """How rare the term is in general English (7 - Zipf frequency, at least 0.1)."""
        return self._background.get(term, 1.0)

    def weight(self, term: str) -> float:
        """Background rarity discounted by how many blocks of this corpus use the term."""
        return self.background(term) * self._spread.get(term, 1.0)

    def vector(self, texts: Iterable[str]) -> Vector:
        """Weighted terms of a passage, sub-linear in how many of its texts use a term.

        A passage that says "crash" in ten paragraphs is not ten times more about crashes
        than one that says it twice.
        """
        counts = Counter(term for text in texts for term in set(content_terms(text)))
        return {term: self.weight(term) * (1.0 + math.log(n)) for term, n in counts.items()}


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine similarity of two sparse vectors (0.0 when either is empty)."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(weight * b[term] for term, weight in a.items() if term in b)
    if dot == 0.0:
        return 0.0
    norm_a = math.sqrt(sum(w * w for w in a.values()))
    norm_b = math.sqrt(sum(w * w for w in b.values()))
    return dot / (norm_a * norm_b)


def add_normalised(total: Vector, vector: Mapping[str, float], scale: float) -> None:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    if norm == 0.0:
        return
    for term, weight in vector.items():
        total[term] = total.get(term, 0.0) + scale * weight / norm


def names(texts: Iterable[str], space: TermSpace) -> set[frozenset[str]]:
    """The distinctive named entities of some texts, each as the set of its telling words.

    A name's telling words are those rare in English and in this corpus: "North Korean"
    is told by "korean", "Russia's Kursk" by "kursk", "Vedant Patel" by both of his
    names. Names with no telling word ("White House", "Ukraine" in a war corpus) are
    left out, and a name contained in another ("Vedant" in "Vedant Patel") is one name.
    """
    found: set[frozenset[str]] = set()
    for text in texts:
        for sentence in split_sentences(text):
            for entity in extract_entities(sentence):
                stems = (stem(w) for w in entity.split())  # the space counts stems
                words = frozenset(w for w in stems if space.weight(w) >= 1.5)
                if words:
                    found.add(words)
    return {name for name in found if not any(name < other for other in found)}


def shared_names(paragraph: Iterable[frozenset[str]], story: Iterable[frozenset[str]]) -> int:
    """How many of the paragraph's names the story also uses (any telling word in common)."""
    words = {word for name in story for word in name}
    return sum(1 for name in paragraph if name & words)


def centroid(profiles: Iterable[Vector]) -> Vector:
    """Sum of the vectors, each scaled to unit length (every passage counts once)."""
    total: Vector = {}
    for vector in profiles:
        add_normalised(total, vector, 1.0)
    return total
