"""Corpus documents -> tracked stories.

What this module is for: cleaning noisy corpus documents (photo captions repeated by the
page, site furniture such as "Read More"), cutting them into passages, grouping passages
into stories (one document may hold several stories, one story may span several
documents), naming each story, and applying the hand edits of stories.toml.

What it must not do: read files or the network (callers pass `CorpusDocument`s), or know
anything about a particular corpus. Grouping is generic: passages are compared by the
background-weighted terms they share (`worker.text.term_weight`).

How passages become stories (numbered because the order matters):
1. Site furniture lines ("Read More", "Source link", a lone "-") end a *block*: aggregator
   pages put one item per block. Captions and repeated lines are dropped without ending
   a block (news pages sprinkle them mid-article).
2. Inside a block, a new *segment* starts where a paragraph shares little with the last
   paragraphs before it (a topic shift, as in TextTiling), as long as both sides keep at
   least `min_segment` paragraphs.
3. Segments are clustered across all documents (average link, `cluster_threshold`).
4. A cluster made only of segments split off inside one block (step 2) and not supported
   by another document is a digression of its article, not a story: it goes back to the
   story of its neighbouring segment.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from worker.errors import ConfigError
from worker.models import CorpusDocument, Story, StoryRule
from worker.text import content_terms, split_sentences, term_weight, tokenize

# ---------------------------------------------------------------------------------------
# Cleaning

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
    r"|^with reporting by|^\w+(?: and \w+)? reported from",
    re.IGNORECASE,
)
# Captions: a parenthesised photo credit at the end, or "In this photo ..." openings.
_CAPTION_CREDIT = re.compile(
    r"\((?:[^()]*(?:photo|AP|Reuters|Getty|AFP|EPA|via|pictured|Press Service|image)"
    r"[^()]*)\)\s*$",
    re.IGNORECASE,
)
_CAPTION_OPENING = re.compile(
    r"^(?:in this (?:handout |file )?(?:photo|image|picture|handout)|pictured|above:|"
    r"photo:|image:)",
    re.IGNORECASE,
)
_TRAILING_FURNITURE = re.compile(r"\s*…?\s*(?:continue reading|read more)\s*$", re.IGNORECASE)
_TERMINAL = re.compile(r"""[.!?:…"”’'»)]$""")


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
        paragraphs.append(
            Paragraph(document.name, len(paragraphs), block, line, kind == "headline")
        )
        if ends_block:
            block += 1
    return paragraphs


def clean_document(text: str) -> list[str]:
    """The lines of a corpus document worth reading: no captions, repeats or furniture."""
    return [p.text for p in clean_paragraphs(CorpusDocument(name="", text=text))]


# ---------------------------------------------------------------------------------------
# Grouping


@dataclass(frozen=True, slots=True)
class CorpusConfig:
    """Knobs of story building; defaults were set on news pages, not on one corpus.

    - `adjacent_threshold`: similarity at which two neighbouring blocks of one document
      are read as one article (a gallery or a "Live Briefing" box cut it in two).
    - `cluster_threshold`: average similarity at which two groups of passages merge.
    - `digression_margin`: how much closer to another story a run of paragraphs must be
      than to its own article before it moves there.
    - `key_terms`: how many key terms a story keeps.
    """

    adjacent_threshold: float = 0.08
    cluster_threshold: float = 0.08
    digression_margin: float = 0.05
    digression_min_similarity: float = 0.12
    key_terms: int = 8
    move_digressions: bool = False


Vector = dict[str, float]


def _vector(texts: Sequence[str], spread: Mapping[str, float] | None = None) -> Vector:
    """Rarity-weighted terms of a passage.

    Sub-linear term frequency: a passage that repeats "crash" ten times is not ten times
    more about crashes than one that says it twice. `spread` (corpus IDF) discounts words
    every passage of this corpus shares ("Ukraine" in a corpus about the war), which the
    background model alone cannot know.
    """
    counts = Counter(term for text in texts for term in set(content_terms(text)))
    spread = spread or {}
    return {
        term: term_weight(term) * spread.get(term, 1.0) * (1.0 + math.log(count))
        for term, count in counts.items()
    }


def _corpus_spread(blocks: Sequence[Sequence[Paragraph]]) -> dict[str, float]:
    """Smoothed inverse block frequency of each term, 1.0 for a term in one block."""
    frequency = Counter(
        term for block in blocks for term in {t for p in block for t in content_terms(p.text)}
    )
    total = len(blocks)
    return {
        term: math.log((total + 1) / (count + 0.5)) / math.log((total + 1) / 1.5)
        for term, count in frequency.items()
    }


def _cosine(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(weight * b[term] for term, weight in a.items() if term in b)
    if dot == 0.0:
        return 0.0
    norm_a = math.sqrt(sum(w * w for w in a.values()))
    norm_b = math.sqrt(sum(w * w for w in b.values()))
    return dot / (norm_a * norm_b)


def _blocks(paragraphs: Sequence[Paragraph]) -> list[list[Paragraph]]:
    blocks: dict[int, list[Paragraph]] = defaultdict(list)
    for paragraph in paragraphs:
        blocks[paragraph.block].append(paragraph)
    return list(blocks.values())


def _units(
    blocks: Sequence[Sequence[Paragraph]], spread: Mapping[str, float], config: CorpusConfig
) -> list[list[Paragraph]]:
    """Blocks of one document, neighbours joined when they read as one article (step 2)."""
    units: list[list[Paragraph]] = []
    previous: Vector = {}
    for block in blocks:
        vector = _vector([p.text for p in block], spread)
        # Compare neighbouring blocks, not the growing unit: on an aggregator page a
        # growing unit would end up sharing enough words with every next item.
        if units and _cosine(previous, vector) >= config.adjacent_threshold:
            units[-1] = [*units[-1], *block]
        else:
            units.append(list(block))
        previous = vector
    return units


def _cluster(vectors: Sequence[Vector], threshold: float) -> list[list[int]]:
    """Average-link agglomerative clustering, deterministic for a given input order."""
    n = len(vectors)
    sim = [[_cosine(vectors[i], vectors[j]) for j in range(n)] for i in range(n)]
    clusters: list[list[int]] = [[i] for i in range(n)]
    while len(clusters) > 1:
        best = (threshold, -1, -1)
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                total = sum(sim[i][j] for i in clusters[a] for j in clusters[b])
                average = total / (len(clusters[a]) * len(clusters[b]))
                if average > best[0]:
                    best = (average, a, b)
        if best[1] < 0:
            break
        _, a, b = best
        clusters[a] = sorted(clusters[a] + clusters[b])
        del clusters[b]
    return clusters


def _move_digressions(
    groups: list[list[Paragraph]], spread: Mapping[str, float], config: CorpusConfig
) -> list[list[Paragraph]]:
    """Step 4: runs of paragraphs that belong to another story move there.

    An article about aid may carry four paragraphs on North Korean troops; when another
    document makes those troops a story of their own, the run joins that story. A run
    must be two paragraphs or more: one stray sentence is context, not a passage.
    """
    centroids = [_vector([p.text for p in group], spread) for group in groups]
    moves: list[tuple[int, int, list[Paragraph]]] = []
    for g, group in enumerate(groups):
        if len(groups) < 2 or len(group) < 4:
            continue
        targets: list[int | None] = []
        for paragraph in group:
            own = _vector([p.text for p in group if p is not paragraph], spread)
            vector = _vector([paragraph.text], spread)
            own_sim = _cosine(vector, own)
            best, best_sim = None, config.digression_min_similarity
            for h, centroid in enumerate(centroids):
                if h == g:
                    continue
                sim = _cosine(vector, centroid)
                if sim > best_sim and sim >= own_sim + config.digression_margin:
                    best, best_sim = h, sim
            targets.append(best)
        i = 0
        while i < len(group):
            j = i
            while j < len(group) and targets[j] is not None and targets[j] == targets[i]:
                j += 1
            target = targets[i]
            if target is not None and j - i >= 2 and j - i < len(group):
                moves.append((g, target, group[i:j]))
            i = max(j, i + 1)
    result = [list(group) for group in groups]
    for source, target, run in moves:
        ids = {id(p) for p in run}
        result[source] = [p for p in result[source] if id(p) not in ids]
        result[target].extend(run)
    return [group for group in result if group]


# ---------------------------------------------------------------------------------------
# Naming


def _surface_forms(texts: Sequence[str]) -> dict[str, str]:
    """Most frequent original spelling per stemmed term, for readable key terms."""
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for text in texts:
        for word in re.findall(r"[^\W_]+(?:[-'’.&][^\W_]+)*", text):
            for term in content_terms(word):
                forms[term][word.rstrip(".").removesuffix("’s").removesuffix("'s")] += 1
    return {term: counts.most_common(1)[0][0] for term, counts in forms.items()}


def _key_terms(paragraphs: Sequence[Paragraph], limit: int) -> list[str]:
    """Stemmed terms ranked by rarity x spread over the story's paragraphs."""
    spread = Counter(term for p in paragraphs for term in set(content_terms(p.text)))
    scored = {
        term: term_weight(term) * count
        for term, count in spread.items()
        if not term.isdigit() and term_weight(term) >= 1.5
    }
    return sorted(scored, key=lambda term: (-scored[term], term))[:limit]


def _slug(words: Sequence[str]) -> str:
    parts = [re.sub(r"[^a-z0-9]+", "-", w.lower()).strip("-") for w in words]
    return "-".join(p for p in parts if p) or "story"


def _title(paragraphs: Sequence[Paragraph], key_terms: Sequence[str]) -> str:
    """A headline of the story when it has one, else its most central opening sentence."""
    headlines = [p.text for p in paragraphs if p.headline]
    if headlines:
        return headlines[0]
    weights = {term: float(len(key_terms) - rank) for rank, term in enumerate(key_terms)}
    candidates = [split_sentences(p.text)[0] for p in paragraphs if split_sentences(p.text)]

    def centrality(sentence: str) -> float:
        terms = set(content_terms(sentence))
        length = max(8, len(sentence.split()))
        return sum(weights.get(term, 0.0) for term in terms) / math.sqrt(length)

    best = max(candidates, key=centrality) if candidates else ""
    return _shorten(best, 120)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _facts(paragraphs: Sequence[Paragraph]) -> tuple[str, ...]:
    seen: set[str] = set()
    facts: list[str] = []
    for paragraph in paragraphs:
        for sentence in split_sentences(paragraph.text):
            key = " ".join(tokenize(sentence))
            if len(key.split()) < 3 or key in seen:
                continue
            seen.add(key)
            facts.append(sentence)
    return tuple(facts)


def _story(paragraphs: Sequence[Paragraph], config: CorpusConfig) -> Story:
    ordered = sorted(paragraphs, key=lambda p: (p.document, p.index))
    stems = _key_terms(ordered, config.key_terms)
    forms = _surface_forms([p.text for p in ordered])
    key_terms = tuple(forms.get(term, term) for term in stems)
    documents = tuple(dict.fromkeys(p.document for p in ordered))
    return Story(
        id=_slug(key_terms[:3]),
        title=_title(ordered, stems),
        key_terms=key_terms,
        documents=documents,
        facts=_facts(ordered),
    )


def build_stories(
    documents: Sequence[CorpusDocument],
    rules: Sequence[StoryRule] = (),
    config: CorpusConfig | None = None,
) -> list[Story]:
    """Group the documents' passages into stories, then apply the stories.toml rules.

    Deterministic: the same documents (in any order) and rules give the same stories,
    ids and order.
    """
    config = config or CorpusConfig()
    per_document = [
        _blocks(clean_paragraphs(document)) for document in sorted(documents, key=lambda d: d.name)
    ]
    spread = _corpus_spread([block for blocks in per_document for block in blocks])
    units: list[list[Paragraph]] = []
    for blocks in per_document:
        units.extend(_units(blocks, spread, config))
    vectors = [_vector([p.text for p in unit], spread) for unit in units]
    clusters = _cluster(vectors, config.cluster_threshold)
    groups = [[p for i in members for p in units[i]] for members in clusters]
    groups = _move_digressions(groups, spread, config) if config.move_digressions else groups
    stories: list[Story] = []
    used: Counter[str] = Counter()
    for group in groups:
        story = _story(group, config)
        used[story.id] += 1
        if used[story.id] > 1:
            story = replace(story, id=f"{story.id}-{used[story.id]}")
        stories.append(story)
    return apply_rules(stories, rules)


def story_from_documents(
    story_id: str,
    documents: Sequence[CorpusDocument],
    *,
    title: str | None = None,
    config: CorpusConfig | None = None,
) -> Story:
    """One story from documents known to be about it (no grouping): cleaned the same way,
    with its key terms, facts and a title. For evaluation protocols and for corpora that
    come one folder per story."""
    config = config or CorpusConfig()
    paragraphs = [
        p
        for document in sorted(documents, key=lambda d: d.name)
        for p in clean_paragraphs(document)
    ]
    story = _story(paragraphs, config)
    return replace(story, id=story_id, title=title or story.title)


# ---------------------------------------------------------------------------------------
# stories.toml rules


def _find(stories: Sequence[Story], needle: str) -> int | None:
    lowered = needle.lower()
    for i, story in enumerate(stories):
        if story.id == needle:
            return i
    for i, story in enumerate(stories):
        if lowered in (w.lower() for w in tokenize(story.title)) or lowered in story.title.lower():
            return i
    return None


def apply_rules(stories: Sequence[Story], rules: Sequence[StoryRule]) -> list[Story]:
    """Rename, merge, route and restrict built stories; add keyword-only stories.

    Every rule that names no story is reported at once (ConfigError), like other config.
    """
    result = list(stories)
    problems: list[str] = []
    for rule in rules:
        if rule.match is None:
            result.append(
                Story(
                    id=rule.id,
                    title=rule.title or rule.id,
                    key_terms=rule.keywords,
                    documents=(),
                    facts=(),
                    keywords=rule.keywords,
                    exclude=rule.exclude,
                    destinations=rule.destinations,
                )
            )
            continue
        index = _find(result, rule.match)
        if index is None:
            problems.append(f"stories.toml: story {rule.id!r}: match {rule.match!r} names no story")
            continue
        story = result[index]
        absorbed: set[int] = set()
        for other_id in rule.merge:
            other = next((i for i, s in enumerate(result) if s.id == other_id), None)
            if other is None or other == index:
                problems.append(f"stories.toml: story {rule.id!r}: merge {other_id!r} not found")
                continue
            extra = result[other]
            absorbed.add(other)
            story = replace(
                story,
                key_terms=tuple(dict.fromkeys(story.key_terms + extra.key_terms)),
                documents=tuple(dict.fromkeys(story.documents + extra.documents)),
                facts=tuple(dict.fromkeys(story.facts + extra.facts)),
            )
        result[index] = replace(
            story,
            id=rule.id,
            title=rule.title or story.title,
            keywords=rule.keywords or story.keywords,
            exclude=rule.exclude or story.exclude,
            destinations=rule.destinations if rule.destinations is not None else story.destinations,
        )
        result = [s for i, s in enumerate(result) if i not in absorbed]
    if problems:
        raise ConfigError(problems)
    return result
