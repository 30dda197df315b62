"""Topic tracking: which tracked story, if any, is an article about?

What this module is for: scoring an article against every story profile with signals that
resist confusers (another plane crash, another Baku event): terms weighted by their
background rarity (`worker.text.term_weight`), the named entities the article shares with
the story, and a calibrated decision (threshold plus margin over the runner-up). Each
match keeps its reasons (shared entities, terms, score) for the alert.

What it must not do: decide novelty, mutate profiles (the tracker owns state), or do I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from worker.models import Match
from worker.text import content_terms, extract_entities, split_sentences, term_weight, tokenize

Vector = dict[str, float]


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Matching knobs, documented so a reader can tell what each one trades.

    - `threshold`: lowest score that can be a match (cosine of rarity-weighted vectors,
      blended with entity support).
    - `margin`: how far ahead of the runner-up story the best one must be; two stories
      that score alike make the article ambiguous, and an ambiguous alert is a bad alert.
    - `min_shared_entities`: distinct named entities (or rare terms) the article must share
      with the story: one shared word is a coincidence, two co-occurring are a topic.
    - `learned_weight`: how much accepted articles count in the profile next to the seed
      corpus; below 1 so a story cannot drift away from what the user asked for.
    - `title_weight`: how many times the title counts, as editors put the topic there.
    """

    threshold: float = 0.16
    margin: float = 0.02
    min_shared_entities: int = 2
    rare_term_weight: float = 3.0
    learned_weight: float = 0.5
    title_weight: float = 2.0


@dataclass(slots=True)
class StoryProfile:
    """What the matcher knows of one story. Mutable on purpose: only the tracker updates it."""

    story_id: str
    seed: Counter[str] = field(default_factory=Counter)  # term -> occurrences (in facts)
    learned: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    norm_cache: float | None = None

    def add_text(self, text: str, *, learned: bool) -> None:
        terms = set(content_terms(text))
        (self.learned if learned else self.seed).update(terms)
        self.entities.update(extract_entities(text))
        self.norm_cache = None

    def weight(self, term: str, config: MatchConfig) -> float:
        count = self.seed.get(term, 0) + config.learned_weight * self.learned.get(term, 0)
        if count <= 0:
            return 0.0
        return term_weight(term) * (1.0 + math.log(1.0 + count))

    def norm(self, config: MatchConfig) -> float:
        if self.norm_cache is None:
            terms = set(self.seed) | set(self.learned)
            self.norm_cache = math.sqrt(sum(self.weight(t, config) ** 2 for t in terms)) or 1.0
        return self.norm_cache


def article_vector(title: str | None, text: str, config: MatchConfig) -> Vector:
    """Rarity-weighted term vector of an article, the title counting `title_weight` times."""
    counts: dict[str, float] = {}
    for sentence in split_sentences(text):
        for term in set(content_terms(sentence)):
            counts[term] = counts.get(term, 0.0) + 1.0
    if title:
        for term in set(content_terms(title)):
            counts[term] = counts.get(term, 0.0) + config.title_weight
    return {t: term_weight(t) * (1.0 + math.log(c)) for t, c in counts.items() if c >= 1}


def article_entities(title: str | None, text: str) -> set[str]:
    entities: set[str] = set()
    for sentence in split_sentences(f"{title or ''}\n{text}"):
        entities.update(extract_entities(sentence))
    return entities


def _contains_phrase(haystack: str, phrase: str) -> bool:
    return f" {phrase.lower()} " in haystack


@dataclass(frozen=True, slots=True)
class Candidate:
    story_id: str
    score: float
    shared_entities: tuple[str, ...]
    shared_terms: tuple[str, ...]


def score_story(
    profile: StoryProfile,
    vector: Vector,
    entities: set[str],
    plain_text: str,
    config: MatchConfig,
) -> Candidate:
    """Score one story: weighted cosine, zero when rules or co-occurrence rule it out."""
    if any(_contains_phrase(plain_text, phrase) for phrase in profile.exclude):
        return Candidate(profile.story_id, 0.0, (), ())
    keyword_hits = tuple(k for k in profile.keywords if _contains_phrase(plain_text, k))
    if profile.keywords and not (profile.seed or profile.learned) and not keyword_hits:
        return Candidate(profile.story_id, 0.0, (), ())
    contributions: dict[str, float] = {}
    for term, weight in vector.items():
        story_weight = profile.weight(term, config)
        if story_weight:
            contributions[term] = weight * story_weight
    article_norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
    cosine = sum(contributions.values()) / (article_norm * profile.norm(config))
    shared_entities = sorted(
        (e for e in entities if e in profile.entities and _distinctive(e, config)),
        key=lambda e: (-profile.entities[e], e),
    )
    rare_terms = {t for t in contributions if term_weight(t) >= config.rare_term_weight}
    support = len(set(shared_entities) | rare_terms)
    score = cosine
    if keyword_hits:
        score = max(score, config.threshold) + 0.05 * len(keyword_hits)
    elif support < config.min_shared_entities:
        score = min(score, config.threshold * 0.5)
    top_terms = sorted(contributions, key=lambda t: -contributions[t])[:6]
    return Candidate(profile.story_id, score, tuple(shared_entities[:6]), tuple(top_terms))


def _distinctive(entity: str, config: MatchConfig) -> bool:
    return (
        max((term_weight(part) for part in entity.split()), default=0.0) >= config.rare_term_weight
    )


def rank(
    profiles: Iterable[StoryProfile],
    title: str | None,
    text: str,
    config: MatchConfig,
) -> list[Candidate]:
    """Every story scored against the article, best first (ties broken by story id)."""
    vector = article_vector(title, text, config)
    entities = article_entities(title, text)
    plain = " " + " ".join(content_terms_raw(f"{title or ''} {text}")) + " "
    scored = [score_story(p, vector, entities, plain, config) for p in profiles]
    return sorted(scored, key=lambda c: (-c.score, c.story_id))


def content_terms_raw(text: str) -> list[str]:
    """Lower-case words for keyword/exclusion phrase tests (no stemming, no stopwords)."""
    return tokenize(text)


def decide_match(candidates: Sequence[Candidate], config: MatchConfig) -> Match | None:
    """The calibrated decision: best score over threshold and ahead of the runner-up."""
    if not candidates:
        return None
    best = candidates[0]
    runner_up = candidates[1].score if len(candidates) > 1 else 0.0
    if best.score < config.threshold or best.score - runner_up < config.margin:
        return None
    reasons = [f"score {best.score:.2f} (runner-up {runner_up:.2f})"]
    if best.shared_entities:
        reasons.append("shared entities: " + ", ".join(best.shared_entities))
    if best.shared_terms:
        reasons.append("shared terms: " + ", ".join(best.shared_terms))
    return Match(story_id=best.story_id, score=round(best.score, 4), reasons=tuple(reasons))
