"""What every use case needs: settings, the database, clients, the clock, the story tracker.

One Runtime per process. The Tracker is cached in memory and brought up to date from the
database before every decision (stories by version, learned facts by per-story cursor), so
every worker process decides from the same state the database holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy import ColumnElement, Engine, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from worker import models
from worker.decide.semantic import SemanticConfig
from worker.decide.tracker import Tracker, TrackerConfig
from worker.delivery.throttle import LocalRateLimiter, RateLimiter, RedisRateLimiter
from worker.fetch.net import FetchPolicy, GuardedClient
from worker.models import Decision, Story
from worker.settings import Settings
from worker.store.configured import STORIES_VERSION_KEY
from worker.store.engine import make_engine, make_sessions, migrate
from worker.store.schema import (
    Article,
    Development,
    Meta,
    StoryFact,
    StoryReport,
    StoryRow,
    utcnow,
)
from worker.stories.stored import story_from_json


def _after(
    story_column: InstrumentedAttribute[str],
    id_column: InstrumentedAttribute[int],
    cursors: dict[str, int],
) -> ColumnElement[bool]:
    """Rows past each story's own cursor (see `TrackerCache._sync_facts` for why)."""
    ranges = (and_(story_column == story, id_column > after) for story, after in cursors.items())
    return or_(*ranges)


def _advance(cursors: dict[str, int], story_id: str, row_id: int) -> None:
    """Move a story's cursor forward (a story rebuilt away has none)."""
    if story_id in cursors:
        cursors[story_id] = max(cursors[story_id], row_id)


class TrackerCache:
    """The process's Tracker, synchronised with the database on demand."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracker: Tracker | None = None
        self._version: str | None = None
        self._cursors: dict[str, int] = {}
        self._development_cursors: dict[str, int] = {}
        self._report_cursors: dict[str, int] = {}
        self._stories: dict[str, Story] = {}
        self.lock = threading.RLock()

    def invalidate(self) -> None:
        self._tracker = None
        self._version = None

    def story(self, story_id: str) -> Story | None:
        return self._stories.get(story_id)

    def current(self, session: Session) -> Tracker:
        """The tracker as of this session's snapshot of stories and learned facts."""
        version = session.get(Meta, STORIES_VERSION_KEY)
        version_value = version.value if version else None
        if self._tracker is None or version_value != self._version:
            rows = session.scalars(select(StoryRow).order_by(StoryRow.position, StoryRow.id))
            stories = [story_from_json(row.data) for row in rows]
            self._stories = {story.id: story for story in stories}
            self._tracker = Tracker(stories, self.config)
            self._version = version_value
            self._cursors = {story.id: 0 for story in stories}
            self._development_cursors = {story.id: 0 for story in stories}
            self._report_cursors = {story.id: 0 for story in stories}
        if not self._cursors:
            return self._tracker
        self._sync_facts(session, self._tracker)
        self._sync_developments(session, self._tracker)
        self._sync_reports(session, self._tracker)
        return self._tracker

    def _sync_facts(self, session: Session, tracker: Tracker) -> None:
        # Each story from its own cursor: ids are committed in order within a story (its
        # lock serializes writers) but not across stories, so one global cursor could skip
        # a fact another story committed late; and the index makes each range cheap.
        facts = session.execute(
            select(StoryFact.id, StoryFact.story_id, StoryFact.text)
            .where(_after(StoryFact.story_id, StoryFact.id, self._cursors))
            .order_by(StoryFact.id)
        )
        pending: dict[str, list[tuple[int, str]]] = {}
        for fact_id, story_id, text in facts:
            pending.setdefault(story_id, []).append((fact_id, text))
        for story_id, rows_ in pending.items():
            tracker.add_facts(story_id, [text for _, text in rows_])
            self._cursors[story_id] = rows_[-1][0]

    def _sync_developments(self, session: Session, tracker: Tracker) -> None:
        """Developments other workers recorded, so this one recognises reports of them.
        Per-story cursors for the reason facts have them; the tracker keeps the latest."""
        # Dated as the tracker dated it (Tracker.learn): by its report, which holds the
        # article's date, or when it was first seen for an undated one.
        counted = (
            select(StoryReport.published)
            .where(
                StoryReport.article_id == Development.article_id,
                StoryReport.story_id == Development.story_id,
            )
            .limit(1)
            .scalar_subquery()
        )
        rows = session.execute(
            select(
                Development.id,
                Development.story_id,
                Development.article_id,
                Development.specifics,
                Development.surge,
                func.coalesce(Article.published, counted, type_=Article.published.type),
            )
            .join(Article, Article.id == Development.article_id)
            .where(_after(Development.story_id, Development.id, self._development_cursors))
            .order_by(Development.id)
        )
        for development_id, story_id, article_id, specifics, surge, published in rows:
            tracker.add_development(
                story_id, str(article_id), specifics or (), published, surge=bool(surge)
            )
            self._development_cursors[story_id] = development_id

    def _sync_reports(self, session: Session, tracker: Tracker) -> None:
        """Reports other workers counted (the stories' daily volume, worker.decide.surge),
        and with embeddings on, the leads of the articles they decided (a copy is counted,
        never decided, so it adds no lead: as `Tracker.learn` saw them)."""
        after = _after(StoryReport.story_id, StoryReport.id, self._report_cursors)
        if not self.config.semantic.enabled:
            rows = session.execute(
                select(StoryReport.id, StoryReport.story_id, StoryReport.published)
                .where(after)
                .order_by(StoryReport.id)
            )
            for report_id, story_id, published in rows:
                tracker.add_report(story_id, published)
                self._report_cursors[story_id] = report_id
            return
        with_leads = session.execute(
            select(
                StoryReport.id,
                StoryReport.story_id,
                StoryReport.published,
                Article.title,
                Article.text,
                Article.duplicate_of,
            )
            .join(Article, Article.id == StoryReport.article_id)
            .where(after)
            .order_by(StoryReport.id)
        )
        for report_id, story_id, published, title, text, duplicate_of in with_leads:
            tracker.add_report(story_id, published)
            if duplicate_of is None:
                tracker.add_lead(story_id, title, text or "")
            self._report_cursors[story_id] = report_id

    # The three ways a worker changes what stories know. Each writes the rows and moves
    # the in-memory tracker and its cursors in one step, so the cache never re-reads what
    # it already holds and never misses what another worker committed. Call them in the
    # transaction that holds the story's row lock: `learn` and `count_report` under `lock`
    # too (they change the shared tracker); `add_development` after `learn` remembered it.

    def learn(
        self, session: Session, article: models.Article, decision: Decision, article_id: int
    ) -> None:
        """The matched story learns the article: its new fact sentences and one report."""
        assert decision.match is not None
        story_id = decision.match.story_id
        learned = self.current(session).learn(article, decision)
        facts = [StoryFact(story_id=story_id, text=text, article_id=article_id) for text in learned]
        # Counted as the tracker counted it (Tracker.learn): an undated report by when it
        # was first seen, so a restarted worker counts the same days.
        report = StoryReport(story_id=story_id, article_id=article_id, published=article.when)
        session.add_all([*facts, report])
        session.flush()
        if facts:
            _advance(self._cursors, story_id, facts[-1].id)
        _advance(self._report_cursors, story_id, report.id)

    def count_report(
        self, session: Session, story_id: str, article_id: int, published: datetime | None
    ) -> None:
        """One more report of the story that is not decided (a copy of one of its articles)."""
        tracker = self.current(session)
        report = StoryReport(story_id=story_id, article_id=article_id, published=published)
        session.add(report)
        session.flush()
        tracker.add_report(story_id, published)
        _advance(self._report_cursors, story_id, report.id)

    def add_development(
        self, session: Session, decision: Decision, article_id: int, detected_at: datetime
    ) -> int:
        """Record the development of a decision `learn` already remembered in memory;
        returns its id."""
        assert decision.match is not None and decision.novelty is not None
        development = Development(
            story_id=decision.match.story_id,
            article_id=article_id,
            new_facts=list(decision.novelty.new_facts),
            score=decision.match.score,
            reasons=[*decision.match.reasons, *decision.novelty.reasons],
            detected_at=detected_at,
            specifics=list(decision.specifics),
            surge=decision.surge,
        )
        session.add(development)
        session.flush()
        _advance(self._development_cursors, development.story_id, development.id)
        return development.id


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    limiter: RateLimiter = field(default_factory=LocalRateLimiter)
    trackers: TrackerCache = field(default_factory=TrackerCache)
    clock: Callable[[], datetime] = utcnow

    def fetch_policy(self) -> FetchPolicy:
        return FetchPolicy(
            allow_private_networks=self.settings.allow_private_networks,
            read_timeout=self.settings.fetch_timeout_seconds,
            deadline_seconds=self.settings.fetch_timeout_seconds * 1.5,
            max_bytes=self.settings.max_response_bytes,
        )

    def fetch_client(self) -> GuardedClient:
        """The guarded client for feeds and pages (SSRF guard, size caps, deadlines)."""
        return GuardedClient(self.fetch_policy())

    def delivery_client(self) -> httpx.Client:
        """Destinations are configured by the operator: timeouts, but no address guard."""
        timeout = httpx.Timeout(self.settings.delivery_timeout_seconds)
        return httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.engine.dispose()


def open_runtime(settings: Settings, *, run_migrations: bool = True) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if run_migrations:
        migrate(engine)
    limiter: RateLimiter = (
        RedisRateLimiter(settings.redis_url) if settings.redis_url else LocalRateLimiter()
    )
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessions(engine),
        limiter=limiter,
        trackers=TrackerCache(tracker_config(settings)),
    )


def tracker_config(settings: Settings) -> TrackerConfig:
    """The decision knobs a worker runs with: the defaults, embeddings as configured."""
    return TrackerConfig(semantic=SemanticConfig(enabled=settings.embeddings))
