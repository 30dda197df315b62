"""Cleaned paragraphs -> groups of paragraphs, one group per story.

What this module is for: deciding which paragraphs of a corpus tell the same story, when
one document may hold several stories (an aggregator page, an article that interleaves
two stories) and one story may span several documents.

What it must not do: name stories, apply stories.toml, read files, or know anything about
a particular corpus. Every signal is generic: the words two passages share, weighted by
how rare each word is in general English (wordfreq) and how few passages of this corpus
use it, with an article's opening weighing most.

How paragraphs become stories (numbered because the order matters):
1. Furniture-delimited blocks (see `worker.cleaning`) are the first cut. Neighbouring
   blocks that share enough words are one article that a gallery or a "Live Briefing"
   box cut in two: they are joined into a *unit*.
2. Each unit gets a *profile*: its paragraphs' vectors weighted by position
   (1/(1+i)), because news is written as an inverted pyramid: the opening says what the
   story is, later paragraphs give background that many stories share ("air raid
   warnings blared over Kyiv" appears in half the war coverage).
3. Profiles are clustered across documents (average link, `cluster_threshold`).
4. Each paragraph after a unit's opening may then move to another story when it is
   clearly closer to that story's centroid than to its own: an aid article that carries
   four paragraphs on North Korean troops in Kursk gives them to the North Korea story.
   The opening never moves: it defines what its unit is about.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from wordfreq import zipf_frequency

from worker.cleaning import Paragraph
from worker.specifics import extract_entities
from worker.text import STOPWORDS, content_terms, split_sentences, stem, tokenize

Vector = dict[str, float]


@dataclass(frozen=True, slots=True)
class CorpusConfig:
    """Knobs of story building; defaults were set on news pages, not tuned to one corpus.

    - `adjacent_threshold`: similarity at which two neighbouring blocks of one document
      are read as one article.
    - `cluster_threshold`: average similarity at which two groups of units merge.
    - `move_margin`: how much closer (absolute cosine) to another story than to its own
      a paragraph must be before it moves there; `move_min_similarity` is the least
      similarity to the story it moves to.
    - `key_terms`: how many key terms a story keeps.
    """

    adjacent_threshold: float = 0.08
    cluster_threshold: float = 0.07
    move_margin: float = 0.04
    move_min_similarity: float = 0.1
    key_terms: int = 8


# ---------------------------------------------------------------------------------------
# Term space


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


def _add(total: Vector, vector: Mapping[str, float], scale: float) -> None:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    if norm == 0.0:
        return
    for term, weight in vector.items():
        total[term] = total.get(term, 0.0) + scale * weight / norm


# ---------------------------------------------------------------------------------------
# Steps 1-3: units, profiles, clusters


def blocks_of(paragraphs: Sequence[Paragraph]) -> list[list[Paragraph]]:
    """A document's paragraphs cut at its furniture lines, in reading order."""
    blocks: dict[int, list[Paragraph]] = defaultdict(list)
    for paragraph in paragraphs:
        blocks[paragraph.block].append(paragraph)
    return [blocks[key] for key in sorted(blocks)]


def _units(
    blocks: Sequence[Sequence[Paragraph]], space: TermSpace, threshold: float
) -> list[list[Paragraph]]:
    """Blocks of one document, neighbours joined when they read as one article (step 1)."""
    units: list[list[Paragraph]] = []
    previous: Vector = {}
    for block in blocks:
        vector = space.vector(p.text for p in block)
        # Compare neighbouring blocks, not the growing unit: on an aggregator page a
        # growing unit would end up sharing enough words with every next item.
        if units and cosine(previous, vector) >= threshold:
            units[-1] = [*units[-1], *block]
        else:
            units.append(list(block))
        previous = vector
    return units


def profile(paragraphs: Sequence[Paragraph], space: TermSpace, skip: int = -1) -> Vector:
    """Step 2: position-weighted sum of the unit's normalised paragraph vectors.

    A headline weighs like the opening paragraph. `skip` leaves one paragraph out (to ask
    how well a paragraph fits its unit without counting itself).
    """
    total: Vector = {}
    rank = 0
    for position, paragraph in enumerate(paragraphs):
        if position != skip:
            _add(total, space.vector([paragraph.text]), 1.0 / (1.0 + rank))
        if not paragraph.headline:
            rank += 1
    return total


def cluster(vectors: Sequence[Vector], threshold: float) -> list[list[int]]:
    """Average-link agglomerative clustering, deterministic for a given input order.

    Ties keep the first pair found, so the result depends only on the order of `vectors`
    (callers sort their input).
    """
    n = len(vectors)
    sim = [[cosine(vectors[i], vectors[j]) for j in range(n)] for i in range(n)]
    clusters: list[list[int]] = [[i] for i in range(n)]
    while len(clusters) > 1:
        best = (threshold, -1, -1)
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                total = sum(sim[i][j] for i in clusters[a] for j in clusters[b])
                average = total / (len(clusters[a]) * len(clusters[b]))
                if average >= best[0] and (best[1] < 0 or average > best[0]):
                    best = (average, a, b)
        if best[1] < 0:
            break
        _, a, b = best
        clusters[a] = sorted(clusters[a] + clusters[b])
        del clusters[b]
    return clusters


# ---------------------------------------------------------------------------------------
# Step 4: paragraphs that belong to another story


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


def _centroid(profiles: Iterable[Vector]) -> Vector:
    total: Vector = {}
    for vector in profiles:
        _add(total, vector, 1.0)
    return total


def _reassign(
    units: Sequence[Sequence[Paragraph]],
    clusters: Sequence[Sequence[int]],
    profiles: Sequence[Vector],
    space: TermSpace,
    config: CorpusConfig,
) -> list[list[Paragraph]]:
    """Step 4: move the paragraphs that clearly tell another story than their unit's.

    A paragraph after its unit's opening moves to story T when:
    1. it is closer to T's centroid than to its own story by `move_margin`, and at least
       `move_min_similarity` close to T; and
    2. it names two or more of T's names (two names together are far more specific than
       shared vocabulary: "Shahed drones over Kyiv" shares words with a strike on a
       Shahed depot but is not that story; "North Korean troops in Kursk" is);
    or it directly follows a paragraph that moved to T, names one of T's names and is
    at least as close to T as to its own story (a digression runs on for a few paragraphs).

    Centroids and names are computed once, before any move, so the result does not
    depend on the order in which paragraphs are visited. Own similarity leaves the
    paragraph out of its unit's profile, so a paragraph never supports itself.
    """
    centroids = [_centroid(profiles[i] for i in members) for members in clusters]
    story_names = [
        names((p.text for i in members for p in units[i]), space) for members in clusters
    ]
    groups: list[list[Paragraph]] = [[] for _ in clusters]
    for c, members in enumerate(clusters):
        for u in members:
            unit = units[u]
            others = [profiles[m] for m in members if m != u]
            previous = c
            for position, paragraph in enumerate(unit):
                target = c
                vector = space.vector([paragraph.text])
                if position > 0 and not paragraph.headline and vector and len(clusters) > 1:
                    own_profile = profile(unit, space, skip=position)
                    own = max(
                        cosine(vector, own_profile),
                        cosine(vector, _centroid([own_profile, *others])),
                    )
                    target = _destination(
                        vector,
                        names([paragraph.text], space),
                        own,
                        c,
                        previous,
                        centroids,
                        story_names,
                        config,
                    )
                groups[target].append(paragraph)
                previous = target
    return [group for group in groups if group]


def _destination(
    vector: Vector,
    paragraph_names: set[frozenset[str]],
    own: float,
    own_story: int,
    previous: int,
    centroids: Sequence[Vector],
    story_names: Sequence[set[frozenset[str]]],
    config: CorpusConfig,
) -> int:
    """The story a paragraph belongs to, by the rules of `_reassign`."""
    best, best_sim = own_story, max(config.move_min_similarity, own + config.move_margin)
    for story, centroid in enumerate(centroids):
        if story == own_story:
            continue
        sim = cosine(vector, centroid)
        if sim >= best_sim and shared_names(paragraph_names, story_names[story]) >= 2:
            best, best_sim = story, sim
    if best == own_story and previous != own_story:
        follows = cosine(vector, centroids[previous]) >= own
        if follows and shared_names(paragraph_names, story_names[previous]) >= 1:
            return previous
    return best


# ---------------------------------------------------------------------------------------
# Entry point


@dataclass(frozen=True, slots=True)
class Grouping:
    """The stories' paragraphs (each group in reading order, groups ordered by their first
    paragraph), the corpus term space, and the (document, index) keys of the paragraphs
    that open a unit (an article or an aggregator item), which the namer prefers."""

    groups: list[list[Paragraph]]
    space: TermSpace
    openings: frozenset[tuple[str, int]]


def group_paragraphs(documents: Sequence[Sequence[Paragraph]], config: CorpusConfig) -> Grouping:
    """Steps 1-4 over the cleaned paragraphs of each document (documents sorted by name)."""
    per_document = [blocks_of(paragraphs) for paragraphs in documents]
    space = TermSpace([block for blocks in per_document for block in blocks])
    units = [
        unit for blocks in per_document for unit in _units(blocks, space, config.adjacent_threshold)
    ]
    profiles = [profile(unit, space) for unit in units]
    clusters = cluster(profiles, config.cluster_threshold)
    groups = _reassign(units, clusters, profiles, space, config)
    ordered = [sorted(group, key=lambda p: (p.document, p.index)) for group in groups]
    return Grouping(
        groups=sorted(ordered, key=lambda g: (g[0].document, g[0].index)),
        space=space,
        openings=frozenset((unit[0].document, unit[0].index) for unit in units),
    )
