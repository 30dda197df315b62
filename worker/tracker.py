"""The story tracker: the in-memory state the live service and `storywatch replay` share.

What this module is for: holding, per tracked story, the matcher's profile and the
novelty knowledge, and answering the one question "does this article make an alert?"
(`decide`), then letting the story learn the article (`learn`). The service persists the
fact sentences `learn` returns and restores them with `add_facts`, so a restarted worker
and a replay decide identically.

What it must not do: I/O, clocks, randomness or logging; `decide` never mutates state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from worker.corroboration import RECENT, RecentDevelopment, new_terms, repeated_development
from worker.match import MatchConfig, StoryProfile, decide_match, rank
from worker.models import Article, Decision, Story
from worker.novelty import KnowledgeBase, NoveltyConfig, article_sentences, assess


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Every knob of story intelligence in one value, with documented defaults."""

    match: MatchConfig = field(default_factory=MatchConfig)
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)
    # "One development, one alert": a report of a development alerted within this window
    # is recorded on it instead (worker.corroboration); the last `recent_developments`
    # of each story are remembered.
    repeat_days: float = RECENT.days
    recent_developments: int = 20


class Tracker:
    """Stories, their profiles and their known facts; decides and learns articles."""

    def __init__(self, stories: Sequence[Story], config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._stories = {story.id: story for story in stories}
        if len(self._stories) != len(stories):
            raise ValueError("story ids must be unique")
        self._profiles: dict[str, StoryProfile] = {}
        self._knowledge: dict[str, KnowledgeBase] = {}
        self._developments: dict[str, deque[RecentDevelopment]] = {
            story.id: deque(maxlen=self.config.recent_developments) for story in stories
        }
        for story in stories:
            profile = StoryProfile.for_config(
                story.id, self.config.match, keywords=story.keywords, exclude=story.exclude
            )
            knowledge = KnowledgeBase()
            for fact in story.facts:
                profile.add_text(fact, learned=False)
                knowledge.add(fact, self.config.novelty)
            for keyword in story.keywords:
                profile.add_text(keyword, learned=False)
            self._profiles[story.id] = profile
            self._knowledge[story.id] = knowledge

    @property
    def story_ids(self) -> tuple[str, ...]:
        return tuple(self._stories)

    def story(self, story_id: str) -> Story:
        return self._stories[story_id]

    def add_facts(self, story_id: str, facts: Sequence[str]) -> None:
        """Restore facts learned earlier (as returned by `learn`), in the same order."""
        self._learn_sentences(story_id, facts)

    def add_development(
        self, story_id: str, key: str, specifics: Sequence[str], published: datetime | None
    ) -> None:
        """Remember an alerted development (as `decide` described it), in detection order."""
        development = RecentDevelopment(key, frozenset(specifics), published)
        self._developments[story_id].append(development)

    def decide(self, article: Article) -> Decision:
        """Match the article, judge novelty against the matched story, and tell whether it
        reports one of the story's recent developments again. No mutation."""
        candidates = rank(self._profiles.values(), article.title, article.text, self.config.match)
        match = decide_match(candidates, self.config.match)
        if match is None:
            return Decision(article_id=article.id, match=None, novelty=None)
        novelty = assess(
            self._knowledge[match.story_id], article.title, article.text, self.config.novelty
        )
        texts = (article.title or "", article.text)
        repeats = repeated_development(
            "\n".join(texts),
            self._developments[match.story_id],
            published=article.published,
            window=timedelta(days=self.config.repeat_days),
        )
        specifics: tuple[str, ...] = ()
        if novelty.is_new and repeats is None:
            # What the story did not know before this article, not merely what its corpus
            # did not: in a months-long story, last month's names are no longer news.
            known = self._knowledge[match.story_id].terms.keys()
            specifics = tuple(sorted(new_terms(texts, known)))
        return Decision(article.id, match, novelty, repeats=repeats, specifics=specifics)

    def learn(self, article: Article, decision: Decision) -> tuple[str, ...]:
        """The matched story learns the article (and remembers it when it is a new
        development); returns the fact sentences it stored."""
        if decision.match is None:
            return ()
        story_id = decision.match.story_id
        if decision.new_development:
            self.add_development(story_id, article.id, decision.specifics, article.published)
        sentences = article_sentences(article.title, article.text)
        return self._learn_sentences(story_id, sentences)

    def _learn_sentences(self, story_id: str, sentences: Sequence[str]) -> tuple[str, ...]:
        knowledge = self._knowledge[story_id]
        profile = self._profiles[story_id]
        added: list[str] = []
        for sentence in sentences:
            if knowledge.add(sentence, self.config.novelty):
                # Only on-topic sentences teach the matcher (see worker.match): the
                # gate depends on the profile alone, so add_facts replays it exactly.
                if profile.relevance(sentence, self.config.match) >= self.config.match.learn_gate:
                    profile.add_text(sentence, learned=True)
                added.append(sentence)
        return tuple(added)
