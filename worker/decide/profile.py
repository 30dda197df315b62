"""What the matcher knows of one story: its weighted terms, names and learned window.

What this module is for: `StoryProfile`, the story's term weights (the corpus anchors
them forever; learned sentences enter a bounded window) and its distinctive names, kept
in step term by term so that learning costs O(terms of the sentence). See
`worker.decide.match` for how profiles are compared with articles.

What it must not do: score articles, or do I/O.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worker.text.specifics import extract_entities
from worker.text.terms import content_terms, term_weight

if TYPE_CHECKING:
    from worker.decide.match import MatchConfig

_NAME_WEIGHT = 3.0  # background weight from which a one-word name is distinctive


def names_of(entities: Iterable[str]) -> list[str]:
    """Distinctive one-word names ("gadhafi", "aktau"); "the president" says nothing."""
    return [e for e in entities if " " not in e and term_weight(e) >= _NAME_WEIGHT]


def _profile_weight(term: str, count: float) -> float:
    """Rarity times damped frequency: a term the story repeats weighs more, sub-linearly."""
    return term_weight(term) * math.log1p(count) if count > 0 else 0.0


@dataclass(slots=True)
class StoryProfile:
    """What the matcher knows of one story. Mutable on purpose: only the tracker updates it."""

    story_id: str
    learned_weight: float = 0.5
    window: int = 3000
    seed_counts: Counter[str] = field(default_factory=Counter)
    learned: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)
    norm_squared: float = 0.0
    recent: deque[tuple[frozenset[str], frozenset[str]]] = field(default_factory=deque)
    names: Counter[str] = field(default_factory=Counter)  # distinctive one-word names
    sentences: int = 0  # seed plus windowed sentences: names per sentence is a rate
    top_cache: dict[int, frozenset[str]] = field(default_factory=dict)  # per limit
    seed_names: set[str] = field(default_factory=set)  # distinctive names of the corpus

    @classmethod
    def for_config(cls, story_id: str, config: MatchConfig, **kwargs: object) -> StoryProfile:
        return cls(
            story_id,
            learned_weight=config.learned_weight,
            window=config.learn_window,
            **kwargs,  # type: ignore[arg-type]
        )

    def _reweigh(self, term: str) -> None:
        count = self.seed_counts.get(term, 0) + self.learned_weight * self.learned.get(term, 0)
        new = _profile_weight(term, count)
        old = self.weights.get(term, 0.0)
        self.norm_squared += new * new - old * old
        if new > 0:
            self.weights[term] = new
        else:
            self.weights.pop(term, None)

    def add_text(self, text: str, *, learned: bool) -> None:
        """Learn one sentence (seed: forever; learned: into the bounded window)."""
        terms = frozenset(content_terms(text))
        entities = frozenset(extract_entities(text))
        if learned:
            if self.seed_names and not self.seed_names.intersection(names_of(entities)):
                entities = frozenset()  # see step 4 of the module docstring
            self._push(terms, entities)
            return
        self.sentences += 1
        self.seed_counts.update(terms)
        self.entities.update(entities)
        self.names.update(names_of(entities))
        self.seed_names.update(names_of(entities))
        self.top_cache.clear()
        for term in terms:
            self._reweigh(term)

    def _push(self, terms: frozenset[str], entities: frozenset[str]) -> None:
        self.recent.append((terms, entities))
        self.sentences += 1
        self.learned.update(terms)
        self.entities.update(entities)
        self.names.update(names_of(entities))
        self.top_cache.clear()
        touched = set(terms)
        if len(self.recent) > self.window:
            old_terms, old_entities = self.recent.popleft()
            self.sentences -= 1
            self.learned.subtract(old_terms)
            self.entities.subtract(old_entities)
            for entity in old_entities:
                if self.entities[entity] <= 0:
                    del self.entities[entity]
            old_names = names_of(old_entities)
            self.names.subtract(old_names)
            for name in old_names:
                if self.names[name] <= 0:
                    del self.names[name]
            for term in old_terms:
                if self.learned[term] <= 0:
                    del self.learned[term]
            touched |= old_terms
        for term in touched:
            self._reweigh(term)

    def relevance(self, text: str, config: MatchConfig) -> float:
        """Share of a sentence's rare-term weight that the profile already knows."""
        rare = {t for t in content_terms(text) if term_weight(t) >= config.rare_term_weight}
        total = sum(term_weight(t) for t in rare)
        if total == 0.0:
            return 0.0
        return sum(term_weight(t) for t in rare if t in self.weights) / total

    def top_names(self, limit: int) -> frozenset[str]:
        """The story's `limit` most repeated distinctive names (ties by name)."""
        cached = self.top_cache.get(limit)
        if cached is None:
            ranked = sorted(self.names.items(), key=lambda item: (-item[1], item[0]))
            cached = self.top_cache[limit] = frozenset(name for name, _ in ranked[:limit])
        return cached

    def name_rate(self, name: str, limit: int) -> float:
        """How often the story names `name` per sentence; 0 unless a top name."""
        if name not in self.top_names(limit):
            return 0.0
        return self.names[name] / max(self.sentences, 1)

    def weight(self, term: str) -> float:
        return self.weights.get(term, 0.0)

    def norm(self) -> float:
        return math.sqrt(max(self.norm_squared, 0.0)) or 1.0
