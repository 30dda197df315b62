"""The story tracker: the in-memory state the live service and `storywatch replay` share.

What this module is for: holding, per tracked story, the matcher's profile, the
novelty knowledge, its recent developments and its daily report counts, and answering the
one question "does this article make an alert?" (`decide`), then letting the story learn
the article (`learn`). The service persists what `learn` changes (the fact sentences it
returns, developments, reports) and restores them with `add_facts`, `add_development` and
`add_report`, so a restarted worker and a replay decide identically.

What it must not do: I/O, clocks, randomness or logging; `decide` changes no state (it
fills only memos, which never change a decision).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from worker.decide.knowledge import KnowledgeBase
from worker.decide.match import (
    ArticleView,
    MatchConfig,
    article_view,
    decide_match,
    rank,
    without_rejected,
)
from worker.decide.novelty import NoveltyConfig, article_sentences, assess
from worker.decide.profile import StoryProfile
from worker.decide.repeats import RECENT, RecentDevelopment, new_terms, repeated_development
from worker.decide.semantic import SemanticConfig, build_matcher
from worker.decide.surge import ReportVolume, SurgeConfig, publication_day
from worker.models import Article, Decision, Match, Novelty, Story
from worker.text.specifics import sentence_features
from worker.text.terms import MAX_ARTICLE_CHARS, bounded_text
from worker.utc import as_utc


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Every knob of story intelligence in one value, with documented defaults."""

    match: MatchConfig = field(default_factory=MatchConfig)
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)
    surge: SurgeConfig = field(default_factory=SurgeConfig)
    # Sentence embeddings as a second opinion on near-miss matches (off by default: see
    # worker.decide.semantic and README "Embeddings").
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    # "One development, one alert": a report of a development alerted within this window
    # is recorded on it instead (worker.decide.repeats); the last `recent_developments`
    # of each story are remembered.
    repeat_days: float = RECENT.days
    recent_developments: int = 20
    # Time as evidence: news is event-driven, so a story's first report after this many
    # days without one tells of something that happened, even in words the story knows
    # ("the case is closed", "a report is published"). 0 turns it off.
    quiet_days: int = 10
    # ... unless the article retells the story: a lead whose every sentence is at least
    # this much told by what the story knows is no news (an explainer, a wire rewrite of
    # the founding event), however long the silence.
    quiet_lead_known: float = 0.5
    # Bounds on one article: its text is read up to `max_article_chars`
    # (worker.text.terms.bounded_text), and its story learns at most
    # `max_learned_sentences` of its sentences, the first ones (news puts the facts first).
    # Both leave every labelled set's decisions as they were (200 sentences did not: it
    # cost Timeline17's alert dates 0.001 F1).
    max_article_chars: int = MAX_ARTICLE_CHARS
    max_learned_sentences: int = 1000
    # A story keeps at most this many learned sentences to compare articles with; past
    # it, the oldest and least informative quarter is folded away (KnowledgeBase.fold).
    # Without a bound, a months-long story's knowledge and the cost of every coverage
    # question grow without end (Timeline17's oil spill learns 48,434 sentences).
    max_known_sentences: int = 20000


class Tracker:
    """Stories, their profiles and their known facts; decides and learns articles."""

    def __init__(self, stories: Sequence[Story], config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._stories = {story.id: story for story in stories}
        if len(self._stories) != len(stories):
            raise ValueError("story ids must be unique")
        self._profiles: dict[str, StoryProfile] = {}
        # Per story, what people said was not that story ("wrong story" feedback).
        self._rejected: dict[str, StoryProfile] = {}
        # Per story, how many alerts people said were not new ("not new" feedback).
        self._not_new: dict[str, int] = {}
        self._view_memo: tuple[str | None, str, ArticleView] | None = None
        # Bumped by every change of what the tracker knows, so a memoised match is known
        # to be still the answer (the service asks `match`, then `decide`, of one article).
        self._changes = 0
        self._match_memo: tuple[str | None, str, int, Match | None] | None = None
        self._knowledge: dict[str, KnowledgeBase] = {}
        self._developments: dict[str, deque[RecentDevelopment]] = {
            story.id: deque(maxlen=self.config.recent_developments) for story in stories
        }
        self._volume = {story.id: ReportVolume(self.config.surge.days) for story in stories}
        self._semantic = build_matcher(stories, self.config.semantic)
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
            knowledge.pinned = len(knowledge.sentences)
            self._profiles[story.id] = profile
            self._knowledge[story.id] = knowledge

    @property
    def story_ids(self) -> tuple[str, ...]:
        return tuple(self._stories)

    def story(self, story_id: str) -> Story:
        return self._stories[story_id]

    def add_facts(self, story_id: str, facts: Sequence[str]) -> None:
        """Restore facts learned earlier (as returned by `learn`), in the same order: any
        number of articles' facts at once (each article's were bounded when learned)."""
        self._learn_sentences(story_id, facts, limit=None)

    def add_development(
        self,
        story_id: str,
        key: str,
        specifics: Sequence[str],
        published: datetime | None,
        *,
        surge: bool = False,
    ) -> None:
        """Remember an alerted development (as `decide` described it), in detection order."""
        self._changes += 1
        development = RecentDevelopment(key, frozenset(specifics), published, surge)
        self._developments[story_id].append(development)

    def add_lead(self, story_id: str, title: str | None, text: str) -> None:
        """Restore an accepted article's lead into the story's embedding (as `learn` does
        with embeddings on; nothing otherwise)."""
        self._changes += 1
        if self._semantic is not None:
            self._semantic.learn(story_id, title, text)

    def reject(self, story_id: str, title: str | None, text: str) -> None:
        """People said this article is not about the story ("wrong story"): articles
        closer to the rejected ones than to the story no longer match it
        (`worker.decide.match.without_rejected`). The caller also unlearns the article
        (the service rebuilds the tracker without its facts)."""
        self._changes += 1
        profile = self._rejected.get(story_id)
        if profile is None:
            profile = StoryProfile.for_config(f"{story_id}:rejected", self.config.match)
            self._rejected[story_id] = profile
        bounded = bounded_text(text, self.config.max_article_chars)
        for sentence in article_sentences(title, bounded):
            profile.add_text(sentence, learned=False)

    def not_new(self, story_id: str) -> None:
        """People said an alert of the story told them nothing new ("not new"). The
        story learned that article's facts already; what it learns here is to ask more
        of a claim: each such verdict asks one more new specific (figure, rare name),
        and that much more unseen weight, of a sentence before it counts as new."""
        self._changes += 1
        self._not_new[story_id] = self._not_new.get(story_id, 0) + 1

    def _novelty_config(self, story_id: str) -> NoveltyConfig:
        verdicts = self._not_new.get(story_id, 0)
        if not verdicts:
            return self.config.novelty
        base = self.config.novelty
        return dataclasses.replace(
            base,
            min_specifics=base.min_specifics + verdicts,
            min_novel_weight=base.min_novel_weight * (1 + verdicts),
        )

    def prepare(self, articles: Sequence[Article]) -> None:
        """Embed many articles' leads in one batch ahead of deciding them (a memo)."""
        if self._semantic is not None:
            self._semantic.prepare((a.title, a.text) for a in articles)

    def add_report(self, story_id: str, published: datetime | None) -> None:
        """Count a report of the story (as `learn` does for every matched article)."""
        self._changes += 1
        if published is not None:
            self._volume[story_id].add(publication_day(published))

    def match(self, article: Article) -> Match | None:
        """The story the article is about, or None: `decide`'s first step alone (the
        service's first look, before it locks that story and decides). No state changes."""
        article = self._bounded(article)
        memo = self._match_memo
        if (
            memo is not None
            and memo[2] == self._changes
            and memo[0] == article.title
            and memo[1] == article.text
        ):
            return memo[3]
        match = self._match(article)
        self._match_memo = (article.title, article.text, self._changes, match)
        return match

    def _match(self, article: Article) -> Match | None:
        view = self._view(article)
        candidates = rank(
            self._profiles.values(), article.title, article.text, self.config.match, view=view
        )
        if self._rejected:
            candidates = without_rejected(candidates, self._profiles, self._rejected, view)
        match = decide_match(candidates, self.config.match)
        if self._semantic is not None:
            review = self._semantic.review(
                candidates, match, article.title, article.text, self.config.match
            )
            match = review.match
        return match

    def prime(self, article: Article, view: ArticleView) -> None:
        """Take `view` as the article's term vector (worker.decide.prepared's, computed by the
        process that stored the article) instead of computing it: the next `match` or
        `decide` of this article uses it."""
        article = self._bounded(article)
        self._view_memo = (article.title, article.text, view)

    def _view(self, article: Article) -> ArticleView:
        """The article's term vector, kept for the next call: the service asks `match`,
        then `decide` under the story's lock, of the same article (a memo: the view
        depends on the text and the config alone)."""
        memo = self._view_memo
        if memo is not None and memo[0] == article.title and memo[1] == article.text:
            return memo[2]
        view = article_view(article.title, article.text, self.config.match)
        self._view_memo = (article.title, article.text, view)
        return view

    def decide(self, article: Article) -> Decision:
        """Match the article, judge novelty against the matched story, and tell whether it
        reports one of the story's recent developments again. Changes no state."""
        article = self._bounded(article)
        match = self.match(article)
        if match is None:
            return Decision(article_id=article.id, match=None, novelty=None)
        novelty = assess(
            self._knowledge[match.story_id],
            article.title,
            article.text,
            self._novelty_config(match.story_id),
        )
        texts = (article.title or "", article.text)
        repeats = repeated_development(
            "\n".join(texts),
            self._developments[match.story_id],
            published=article.published,
            window=timedelta(days=self.config.repeat_days),
        )
        known_as_of = self._stories[match.story_id].known_as_of
        when = article.when
        if known_as_of and when and as_utc(when) <= as_utc(known_as_of):
            # Reported by the time the user's corpus was written: the story learns it (so
            # later copies are known) but it is not news to the user.
            reason = f"published by the story's known_as_of ({known_as_of.isoformat()})"
            dated = dataclasses.replace(
                novelty, is_new=False, new_facts=(), reasons=(*novelty.reasons, reason)
            )
            return Decision(article.id, match, dated, repeats=repeats)
        surge = False
        # A surge on the known_as_of day itself would be made of reports the user knew.
        cutoff_day = publication_day(known_as_of) if known_as_of else None
        if (
            not novelty.is_new
            and repeats is None
            and when is not None
            and publication_day(when) != cutoff_day
        ):
            # Only an article novelty does not find new belongs to the day's surge (or
            # makes one): new facts on a surge day are a development of their own.
            day = publication_day(when)
            repeats = self._surge_development_on(match.story_id, day)
            if repeats is None:
                surged = self._with_surge(match.story_id, day, novelty)
                surge, novelty = surged is not None, surged or novelty
            if repeats is None and not surge:
                novelty = self._after_quiet_spell(match.story_id, day, cutoff_day, novelty)
        specifics: tuple[str, ...] = ()
        if novelty.is_new and repeats is None:
            # What the story did not know before this article, not merely what its corpus
            # did not: in a months-long story, last month's names are no longer news.
            known = self._knowledge[match.story_id].terms.keys()
            specifics = tuple(sorted(new_terms(texts, known)))
        return Decision(
            article.id, match, novelty, repeats=repeats, specifics=specifics, surge=surge
        )

    def _surge_development_on(self, story_id: str, day: date) -> str | None:
        """The surge development of the story that day: its later reports belong to it."""
        for development in self._developments[story_id]:
            published = development.published
            if development.surge and published is not None and publication_day(published) == day:
                return development.key
        return None

    def _after_quiet_spell(
        self, story_id: str, day: date, since: date | None, novelty: Novelty
    ) -> Novelty:
        """The novelty made new by coming after `quiet_days` without a report, else as is.

        Not when the article retells the story: when every sentence of its lead is at
        least `quiet_lead_known` told by two known sentences together (a wire report of
        the crash itself, with a new official's name and the survivors counted anew).
        """
        if self.config.quiet_days <= 0 or not novelty.salient or not novelty.lead:
            return novelty
        silent = self._volume[story_id].silent_days(day, since)
        if silent is None or silent < self.config.quiet_days:
            return novelty
        knowledge = self._knowledge[story_id]
        told = min(knowledge.retold(sentence_features(s)) for s in novelty.lead)
        if told >= self.config.quiet_lead_known:
            return novelty
        return _made_new(novelty, f"first report in {silent} days")

    def _with_surge(self, story_id: str, day: date, novelty: Novelty) -> Novelty | None:
        """The novelty made new by a surge of reports on `day` (see worker.decide.surge), or None.
        Once a day: a day that already had a development of the story adds nothing."""
        if not novelty.salient or any(
            d.published is not None and publication_day(d.published) == day
            for d in self._developments[story_id]
        ):
            return None
        surge = self._volume[story_id].surge(day, self.config.surge)
        if surge is None:
            return None
        reports, usual = surge
        return _made_new(
            novelty, f"surge: {reports} reports on {day.isoformat()} against {usual:.1f} a day"
        )

    def learn(self, article: Article, decision: Decision) -> tuple[str, ...]:
        """The matched story learns the article (and remembers it when it is a new
        development); returns the fact sentences it stored."""
        if decision.match is None:
            return ()
        article = self._bounded(article)
        story_id = decision.match.story_id
        self.add_report(story_id, article.when)
        self.add_lead(story_id, article.title, article.text)
        if decision.new_development:
            # Dated as its report was counted (an undated one by when it was seen), so
            # the day's later reports find it (pipeline restores the same date).
            self.add_development(
                story_id, article.id, decision.specifics, article.when, surge=decision.surge
            )
        sentences = article_sentences(article.title, article.text)
        return self._learn_sentences(story_id, sentences, limit=self.config.max_learned_sentences)

    def _bounded(self, article: Article) -> Article:
        return _bounded_article(article, self.config.max_article_chars)

    def _learn_sentences(
        self, story_id: str, sentences: Sequence[str], *, limit: int | None
    ) -> tuple[str, ...]:
        self._changes += 1
        knowledge = self._knowledge[story_id]
        profile = self._profiles[story_id]
        most = self.config.max_known_sentences
        added: list[str] = []
        for sentence in sentences:
            if limit is not None and len(added) >= limit:
                break
            if knowledge.add(sentence, self.config.novelty):
                # Folded at the sentence that overflows, whether learned or restored in
                # one batch, so both fold at the same points.
                if len(knowledge.sentences) - knowledge.pinned > most:
                    knowledge.fold(knowledge.pinned + most - most // 4, self.config.novelty)
                # Only on-topic sentences teach the matcher (see worker.decide.match): the
                # gate depends on the profile alone, so add_facts replays it exactly.
                if profile.relevance(sentence, self.config.match) >= self.config.match.learn_gate:
                    profile.add_text(sentence, learned=True)
                added.append(sentence)
        return tuple(added)


def _bounded_article(article: Article, max_chars: int) -> Article:
    text = bounded_text(article.text, max_chars)
    return article if text is article.text else dataclasses.replace(article, text=text)


def _made_new(novelty: Novelty, reason: str) -> Novelty:
    """Novelty turned into a development by something other than new facts (a surge, a
    quiet spell's end): the alert quotes the article's salient sentences."""
    return dataclasses.replace(
        novelty, is_new=True, new_facts=novelty.salient, reasons=(*novelty.reasons, reason)
    )
