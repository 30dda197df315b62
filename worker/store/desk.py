"""What the story desk (`worker.web`) shows: the stories with their latest development
and daily reports, one story's timeline, and the reports folded under it.

Reads only, inside the caller's session; every query is bounded (a limit, or one row per
story), so a page costs the same with 10,000 items stored as with 100.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from worker.models import Story
from worker.store.schema import (
    Alert,
    Article,
    Development,
    DevelopmentSource,
    Feedback,
    Item,
    StoryReport,
    StoryRow,
)
from worker.stories.stored import story_from_json

SPARK_DAYS = 14  # the reports-per-day sparkline of each story


@dataclass(frozen=True, slots=True)
class Source:
    source: str | None
    url: str | None
    how: str  # "copy" | "rewrite"


@dataclass(frozen=True, slots=True)
class DevelopmentView:
    id: int
    story_id: str
    article_id: int
    title: str | None
    url: str | None
    source: str | None
    published: datetime | None
    detected_at: datetime
    new_facts: tuple[str, ...]
    reasons: tuple[str, ...]
    alert_id: str | None
    also_reported: tuple[Source, ...] = ()
    verdicts: tuple[str, ...] = ()  # what people said of it (worker.store.feedback)

    @property
    def when(self) -> datetime:
        return self.published or self.detected_at

    @property
    def wrong_story(self) -> bool:
        """People said it is not about the story: shown struck, not counted."""
        return "wrong-story" in self.verdicts


@dataclass(frozen=True, slots=True)
class ReportView:
    """A matched report that made no development: a rehash, or a copy of another article."""

    article_id: int
    title: str | None
    url: str | None
    source: str | None
    published: datetime | None
    seen_at: datetime
    copy_of: int | None
    score: float | None


@dataclass(frozen=True, slots=True)
class StoryOverview:
    id: str
    title: str
    developments: int
    reports: int
    latest: DevelopmentView | None
    reports_per_day: tuple[int, ...]  # the last SPARK_DAYS days, oldest first


@dataclass(frozen=True, slots=True)
class StoryTimeline:
    overview: StoryOverview
    story: Story
    developments: tuple[DevelopmentView, ...]  # newest first by date
    reports: tuple[ReportView, ...]  # newest first, bounded


def overviews(session: Session, today: date) -> tuple[StoryOverview, ...]:
    """Every stored story, in corpus order, with its counts and latest development."""
    rows = session.execute(select(StoryRow.id, StoryRow.title).order_by(StoryRow.position)).all()
    developments = {
        story_id: count
        for story_id, count in session.execute(
            select(Development.story_id, func.count())
            .where(~_JUDGED_WRONG)
            .group_by(Development.story_id)
        )
    }
    reports = {
        story_id: count
        for story_id, count in session.execute(
            select(StoryReport.story_id, func.count()).group_by(StoryReport.story_id)
        )
    }
    # Each story's latest development by its date, not by when it was detected: after
    # an outage the backlog is decided in one go, and the last decided may be old news.
    ranked = (
        select(
            Development.id,
            func.row_number()
            .over(partition_by=Development.story_id, order_by=(_WHEN.desc(), Development.id.desc()))
            .label("rank"),
        )
        .join(Article, Article.id == Development.article_id)
        .where(~_JUDGED_WRONG)
        .subquery()
    )
    latest_ids = select(ranked.c.id).where(ranked.c.rank == 1)
    latest = {d.story_id: d for d in _developments(session, Development.id.in_(latest_ids))}
    spark = _reports_per_day(session, today)
    return tuple(
        StoryOverview(
            id=story_id,
            title=title,
            developments=developments.get(story_id, 0),
            reports=reports.get(story_id, 0),
            latest=latest.get(story_id),
            reports_per_day=spark.get(story_id, (0,) * SPARK_DAYS),
        )
        for story_id, title in rows
    )


def timeline(
    session: Session, story_id: str, today: date, *, limit: int = 200
) -> StoryTimeline | None:
    """One story's developments (newest first, each with its other outlets) and the
    reports that made none, or None when there is no such story."""
    row = session.get(StoryRow, story_id)
    if row is None:
        return None
    overview = next(o for o in overviews(session, today) if o.id == story_id)
    developments = _developments(
        session, Development.story_id == story_id, limit=limit, by_date=True
    )
    made = select(Development.article_id).where(Development.story_id == story_id)
    reported = (
        select(Article, StoryReport.id)
        .join(StoryReport, StoryReport.article_id == Article.id)
        .where(StoryReport.story_id == story_id, Article.id.not_in(made))
        .order_by(StoryReport.id.desc())
        .limit(limit)
    )
    reports = tuple(
        _report(article, article.created_at) for article, _ in session.execute(reported)
    )
    return StoryTimeline(overview, story_from_json(row.data), developments, reports)


def reported(session: Session, story_id: str, article_id: int) -> bool:
    """The article was counted as a report of the story."""
    return (
        session.scalar(
            select(StoryReport.id).where(
                StoryReport.story_id == story_id, StoryReport.article_id == article_id
            )
        )
        is not None
    )


def story_titles(session: Session) -> tuple[tuple[str, str], ...]:
    """(id, title) of every story, in corpus order."""
    rows = session.execute(select(StoryRow.id, StoryRow.title).order_by(StoryRow.position))
    return tuple((story_id, title) for story_id, title in rows)


def story_exists(session: Session, story_id: str) -> bool:
    return session.get(StoryRow, story_id) is not None


# An article the decision matched to no story, and nobody has since given to one.
_UNMATCHED = (Item.outcome == "unmatched", Article.story_id.is_(None))


def unmatched(session: Session, *, limit: int = 100) -> tuple[ReportView, ...]:
    """The latest articles that matched no story (newest decided first): where a person
    finds the development the stories missed."""
    # Columns, not the rows: an article's text is up to 100,000 characters, and a
    # hundred of them were most of this page's time.
    rows = session.execute(
        select(
            Article.id,
            Article.title,
            Article.url,
            Article.source,
            Article.published,
            func.coalesce(Item.processed_at, Article.created_at),
            Article.duplicate_of,
            Article.score,
        )
        .join(Item, Item.article_id == Article.id)
        .where(*_UNMATCHED)
        .order_by(Item.id.desc())
        .limit(limit)
    )
    return tuple(ReportView(*row) for row in rows)


def _report(article: Article, seen_at: datetime) -> ReportView:
    return ReportView(
        article_id=article.id,
        title=article.title,
        url=article.url,
        source=article.source,
        published=article.published,
        seen_at=seen_at,
        copy_of=article.duplicate_of,
        score=article.score,
    )


def is_unmatched(session: Session, article_id: int) -> bool:
    """The article was decided and matched no story (and was given to none since)."""
    found = session.scalar(
        select(Article.id)
        .join(Item, Item.article_id == Article.id)
        .where(Article.id == article_id, *_UNMATCHED)
        .limit(1)
    )
    return found is not None


def latest_developments(session: Session, limit: int) -> tuple[DevelopmentView, ...]:
    """The newest developments of every story."""
    return _developments(session, true(), limit=limit)


# A development's date as the desk shows it (`DevelopmentView.when`).
_WHEN = func.coalesce(Article.published, Development.detected_at)
# People said the development's article is not about its story ("wrong story"): its
# record stays (decisions are history), but it is no longer counted as the story's.
_JUDGED_WRONG = (
    select(Feedback.id)
    .where(
        Feedback.story_id == Development.story_id,
        Feedback.article_id == Development.article_id,
        Feedback.verdict == "wrong-story",
    )
    .exists()
)


def _developments(
    session: Session, where: object, *, limit: int | None = None, by_date: bool = False
) -> tuple[DevelopmentView, ...]:
    """Newest first: by detection (what a feed reader is handed), or `by_date`, by the
    date shown (a timeline)."""
    order = (_WHEN.desc(), Development.id.desc()) if by_date else (Development.id.desc(),)
    query = (
        select(Development, Article, Alert.id)
        .join(Article, Article.id == Development.article_id)
        .outerjoin(Alert, Alert.development_id == Development.id)
        .where(where)  # type: ignore[arg-type]
        .order_by(*order)
    )
    if limit is not None:
        query = query.limit(limit)
    found = session.execute(query).all()
    sources: dict[int, list[Source]] = defaultdict(list)
    if found:
        other = DevelopmentSource
        for development_id, source, url, how in session.execute(
            select(other.development_id, other.source, other.url, other.how)
            .where(other.development_id.in_([d.id for d, _, _ in found]))
            .order_by(other.id)
        ):
            sources[development_id].append(Source(source, url, how))
    verdicts: dict[tuple[str, int], list[str]] = defaultdict(list)
    if found:
        for story_id, article_id, verdict in session.execute(
            select(Feedback.story_id, Feedback.article_id, Feedback.verdict)
            .where(Feedback.article_id.in_([a.id for _, a, _ in found]))
            .order_by(Feedback.id)
        ):
            verdicts[(story_id, article_id)].append(verdict)
    return tuple(
        DevelopmentView(
            id=development.id,
            story_id=development.story_id,
            article_id=article.id,
            title=article.title,
            url=article.url,
            source=article.source,
            published=article.published,
            detected_at=development.detected_at,
            new_facts=tuple(str(f) for f in development.new_facts),
            reasons=tuple(str(r) for r in development.reasons),
            alert_id=alert_id,
            also_reported=tuple(sources[development.id]),
            verdicts=tuple(verdicts[(development.story_id, article.id)]),
        )
        for development, article, alert_id in found
    )


def _reports_per_day(session: Session, today: date) -> dict[str, tuple[int, ...]]:
    """Reports per story per day over the last SPARK_DAYS days (by publication, else when
    the article was stored)."""
    first = today - timedelta(days=SPARK_DAYS - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    day = func.coalesce(StoryReport.published, Article.created_at)
    rows = session.execute(
        select(StoryReport.story_id, day)
        .join(Article, Article.id == StoryReport.article_id)
        .where(day >= since)
    )
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * SPARK_DAYS)
    for story_id, moment in rows:
        offset = (moment.date() - first).days
        if 0 <= offset < SPARK_DAYS:
            counts[story_id][offset] += 1
    return {story_id: tuple(days) for story_id, days in counts.items()}
