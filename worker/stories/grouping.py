"""Cleaned paragraphs -> groups of paragraphs, one group per story.

What this module is for: deciding which paragraphs of a corpus tell the same story, when
one document may hold several stories (an aggregator page, an article that interleaves
two stories) and one story may span several documents.

What it must not do: name stories, apply stories.toml, read files, or know anything about
a particular corpus. Every signal is generic: the words two passages share, weighted by
how rare each word is in general English (wordfreq) and how few passages of this corpus
use it, with an article's opening weighing most.

How paragraphs become stories (numbered because the order matters):
1. Furniture-delimited blocks (see `worker.stories.cleaning`) are the first cut. Neighbouring
   blocks that share enough words are one article that a gallery or a "Live Briefing"
   box cut in two: they are joined into a *unit*. A unit too small to tell a story of
   its own (a few common words and no name: a sign-off, a blog's one-line intro, a
   reader's comment) is a fragment of its page and joins its closer neighbour; left
   alone it would become a story that names nothing.
2. Each unit gets a *profile*: its paragraphs' vectors weighted by position
   (1/(1+i)), because news is written as an inverted pyramid: the opening says what the
   story is, later paragraphs give background that many stories share ("air raid
   warnings blared over Kyiv" appears in half the war coverage).
3. Profiles are clustered across documents (average link, `cluster_threshold`). Then a
   thinly supported cluster (fewer than `anchor_documents` documents) folds into a
   well-supported one whose centroid is close to its own: average link dilutes a side
   article's similarity over the many varied articles of a big story, while the
   centroid keeps what they share. Left apart, the two stories split the names the
   tracker tells stories by (measured on Timeline17 given as one folder: a two-document
   Libya story took the Libya reports while the eight-document one drifted to Syria).
4. Each paragraph after a unit's opening may then move to another story when it is
   clearly closer to that story's centroid than to its own: an aid article that carries
   four paragraphs on North Korean troops in Kursk gives them to the North Korea story.
   The opening never moves: it defines what its unit is about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from worker.stories.cleaning import Paragraph
from worker.stories.term_space import (
    TermSpace,
    Vector,
    add_normalised,
    centroid,
    cosine,
    names,
    shared_names,
)


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
    - `fragment_terms`: a unit with fewer content terms than this, and no distinctive
      name, is a fragment of its page, not a story (step 1).
    - `anchor_documents`: documents from which a cluster is a well-supported story;
      `fold_similarity` is the centroid similarity at which a cluster with fewer
      documents, and at most 1/`fold_support_ratio` of the well-supported one's, folds
      into it (step 3).
    """

    adjacent_threshold: float = 0.08
    cluster_threshold: float = 0.07
    move_margin: float = 0.04
    move_min_similarity: float = 0.1
    key_terms: int = 8
    fragment_terms: int = 12
    anchor_documents: int = 3
    fold_similarity: float = 0.06
    fold_support_ratio: int = 4


# ---------------------------------------------------------------------------------------
# Steps 1-3: units, profiles, clusters


def blocks_of(paragraphs: Sequence[Paragraph]) -> list[list[Paragraph]]:
    """A document's paragraphs cut at its furniture lines, in reading order."""
    blocks: dict[int, list[Paragraph]] = defaultdict(list)
    for paragraph in paragraphs:
        blocks[paragraph.block].append(paragraph)
    return [blocks[key] for key in sorted(blocks)]


def _units(
    blocks: Sequence[Sequence[Paragraph]], space: TermSpace, threshold: float, fragment_terms: int
) -> list[list[Paragraph]]:
    """Blocks of one document, neighbours joined when they read as one article and
    fragments joined to a neighbour (step 1)."""
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
    return _join_fragments(units, space, fragment_terms)


def _is_fragment(unit: Sequence[Paragraph], space: TermSpace, fragment_terms: int) -> bool:
    """Too few words to be a story and no name to anchor one (a headline-only aggregator
    item such as "Tajikistan Buys Presidential Plane From Mexico" names two places)."""
    texts = [p.text for p in unit]
    return len(space.vector(texts)) < fragment_terms and not names(texts, space)


def _join_fragments(
    units: list[list[Paragraph]], space: TermSpace, fragment_terms: int
) -> list[list[Paragraph]]:
    """Fragments join the neighbouring unit of their document they share more words with
    (the previous one on a tie: a sign-off closes what came before it)."""
    joined = [list(unit) for unit in units]
    position = 0
    while len(joined) > 1 and position < len(joined):
        unit = joined[position]
        if not _is_fragment(unit, space, fragment_terms):
            position += 1
            continue
        vector = space.vector(p.text for p in unit)
        before = (
            cosine(vector, space.vector(p.text for p in joined[position - 1])) if position else -1.0
        )
        after = (
            cosine(vector, space.vector(p.text for p in joined[position + 1]))
            if position + 1 < len(joined)
            else -1.0
        )
        if before >= after:
            joined[position - 1].extend(unit)
        else:
            joined[position + 1] = [*unit, *joined[position + 1]]
        del joined[position]
    return joined


def profile(paragraphs: Sequence[Paragraph], space: TermSpace, skip: int = -1) -> Vector:
    """Step 2: position-weighted sum of the unit's normalised paragraph vectors.

    A headline weighs like the opening paragraph. `skip` leaves one paragraph out (to ask
    how well a paragraph fits its unit without counting itself).
    """
    total: Vector = {}
    rank = 0
    for position, paragraph in enumerate(paragraphs):
        if position != skip:
            add_normalised(total, space.vector([paragraph.text]), 1.0 / (1.0 + rank))
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


def _fold_thin(
    units: Sequence[Sequence[Paragraph]],
    clusters: Sequence[Sequence[int]],
    profiles: Sequence[Vector],
    config: CorpusConfig,
) -> list[list[int]]:
    """Step 3, second half: thinly supported clusters fold into a close well-supported one.

    A cluster folds when:
    1. it has fewer than `anchor_documents` documents, and the target at least that many
       and `fold_support_ratio` times as many (two stories of similar support are two
       stories: the default corpus's one-document NATO article stays apart from its
       three-document aid story, though their centroids are 0.097 close);
    2. its centroid is at least `fold_similarity` close to the target's, the closest
       such target winning.
    Centroids are computed once and well-supported clusters never fold, so the result
    does not depend on the order of the clusters.
    """
    support = [len({units[u][0].document for u in members}) for members in clusters]
    centroids = [centroid(profiles[u] for u in members) for members in clusters]
    folded = [list(members) for members in clusters]
    gone: set[int] = set()
    for thin, members in enumerate(clusters):
        if support[thin] >= config.anchor_documents:
            continue
        best, best_sim = -1, config.fold_similarity
        for anchor in range(len(clusters)):
            if (
                support[anchor] < config.anchor_documents
                or support[anchor] < config.fold_support_ratio * support[thin]
            ):
                continue
            sim = cosine(centroids[thin], centroids[anchor])
            if sim >= best_sim:
                best, best_sim = anchor, sim
        if best >= 0:
            folded[best].extend(members)
            gone.add(thin)
    return [sorted(members) for index, members in enumerate(folded) if index not in gone]


# ---------------------------------------------------------------------------------------
# Step 4: paragraphs that belong to another story


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
    centroids = [centroid(profiles[i] for i in members) for members in clusters]
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
                        cosine(vector, centroid([own_profile, *others])),
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
    for story, story_centroid in enumerate(centroids):
        if story == own_story:
            continue
        sim = cosine(vector, story_centroid)
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
        unit
        for blocks in per_document
        for unit in _units(blocks, space, config.adjacent_threshold, config.fragment_terms)
    ]
    profiles = [profile(unit, space) for unit in units]
    clusters = _fold_thin(units, cluster(profiles, config.cluster_threshold), profiles, config)
    groups = _reassign(units, clusters, profiles, space, config)
    ordered = [sorted(group, key=lambda p: (p.document, p.index)) for group in groups]
    return Grouping(
        groups=sorted(ordered, key=lambda g: (g[0].document, g[0].index)),
        space=space,
        openings=frozenset((unit[0].document, unit[0].index) for unit in units),
    )
