"""What the stories know, as rows: the stored stories and their version, the fact
sentences they learned, the reports they counted, the developments they recorded, and
the row lock that serialises decisions about one story.

Reads take per-story cursors (`{story_id: last id seen}`): ids are committed in order
within a story, because its row lock serialises writers, but not across stories, so one
global cursor could skip a row another story committed late. Each function runs inside
the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from worker.models import Decision, Story
from worker.store.configured import STORIES_VERSION_KEY
from worker.store.schema import (
    Article,
    Development,
    Feedback,
    Meta,
    StoryFact,
    StoryReport,
    StoryRow,
    UTCDateTime,
)
from worker.stories.stored import story_from_json
from worker.utc import utcnow


class LearnedFact(NamedTuple):
    id: int
    story_id: str
    text: str


class RecordedDevelopment(NamedTuple):
    id: int
    story_id: str
    article_id: int
    specifics: Sequence[str]
    surge: bool
    published: datetime | None  # the article's date, else its report's (when first seen)


class CountedReport(NamedTuple):
    id: int
    story_id: str
    published: datetime | None
    # With leads only: the decided article's title and text (a copy has none).
    lead: tuple[str | None, str] | None = None


def stories_version(session: Session) -> str | None:
    """Changes whenever the stories are rebuilt (worker.store.configured.sync_stories)."""
    version = session.get(Meta, STORIES_VERSION_KEY)
    return version.value if version else None


class StoriesState(NamedTuple):
    version: str | None  # `stories_version`
    changes: dict[str, int]  # each story's count of knowledge changes (`touch`)


_STATE = select(
    StoryRow.id,
    StoryRow.changes,
    select(Meta.value).where(Meta.key == STORIES_VERSION_KEY).scalar_subquery(),
)


def stories_state(session: Session) -> StoriesState:
    """`stories_version` and each story's change count in one statement: the decider
    asks both before every decision."""
    rows = session.execute(_STATE).all()
    if not rows:
        return StoriesState(stories_version(session), {})
    return StoriesState(rows[0][2], {story_id: changes for story_id, changes, _ in rows})


def stored_stories(session: Session) -> list[Story]:
    """The tracked stories in their configured order."""
    rows = session.scalars(select(StoryRow).order_by(StoryRow.position, StoryRow.id))
    return [story_from_json(row.data) for row in rows]


def stored_story(session: Session, story_id: str) -> Story | None:
    """One tracked story, for a process that holds no tracker (the desk)."""
    row = session.get(StoryRow, story_id)
    return story_from_json(row.data) if row is not None else None


def lock_story(session: Session, story_id: str, *, wait: bool = True) -> bool | None:
    """Hold the story's row until the transaction ends: True, or False when it no longer
    exists. Without `wait`, None when another transaction holds it (SKIP LOCKED: no error,
    so the transaction goes on)."""
    locked = select(StoryRow.id).where(StoryRow.id == story_id)
    if wait:
        return session.scalar(locked.with_for_update()) is not None
    if session.scalar(locked.with_for_update(skip_locked=True)) is not None:
        return True
    exists = session.scalar(locked) is not None  # rare: held elsewhere, or gone
    return None if exists else False


def _after(
    story_column: InstrumentedAttribute[str],
    id_column: InstrumentedAttribute[int],
    cursors: dict[str, int],
) -> ColumnElement[bool]:
    """Rows past each story's own cursor; the (story, id) index makes each range cheap."""
    ranges = (and_(story_column == story, id_column > after) for story, after in cursors.items())
    return or_(*ranges)


def facts_after(session: Session, cursors: dict[str, int]) -> Iterator[LearnedFact]:
    rows = session.execute(
        select(StoryFact.id, StoryFact.story_id, StoryFact.text)
        .where(_after(StoryFact.story_id, StoryFact.id, cursors))
        .order_by(StoryFact.id)
    )
    for fact_id, story_id, fact in rows:
        yield LearnedFact(fact_id, story_id, fact)


def developments_after(session: Session, cursors: dict[str, int]) -> Iterator[RecordedDevelopment]:
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
        .where(_after(Development.story_id, Development.id, cursors))
        .order_by(Development.id)
    )
    for development_id, story_id, article_id, specifics, surge, published in rows:
        yield RecordedDevelopment(
            development_id, story_id, article_id, specifics or (), bool(surge), published
        )


def reports_after(
    session: Session, cursors: dict[str, int], *, with_leads: bool
) -> Iterator[CountedReport]:
    after = _after(StoryReport.story_id, StoryReport.id, cursors)
    if not with_leads:
        plain = session.execute(
            select(StoryReport.id, StoryReport.story_id, StoryReport.published)
            .where(after)
            .order_by(StoryReport.id)
        )
        for report_id, story_id, published in plain:
            yield CountedReport(report_id, story_id, published)
        return
    rows = session.execute(
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
    for report_id, story_id, published, title, body, duplicate_of in rows:
        lead = (title, body or "") if duplicate_of is None else None
        yield CountedReport(report_id, story_id, published, lead)


def touch(session: Session, story_id: str) -> int | None:
    """Count one more change of the story's knowledge, in the transaction that holds its
    lock and wrote the change; the new count (None: the story is gone)."""
    return session.scalar(
        update(StoryRow)
        .where(StoryRow.id == story_id)
        .values(changes=StoryRow.changes + 1)
        .returning(StoryRow.changes)
        .execution_options(synchronize_session=False)
    )


def add_facts(session: Session, story_id: str, article_id: int, texts: Sequence[str]) -> int | None:
    """Store the fact sentences a story learned from an article; the last new id. One bulk
    INSERT, in learning order."""
    if not texts:
        return None
    rows = [{"story_id": story_id, "text": text, "article_id": article_id} for text in texts]
    ids = session.scalars(
        insert(StoryFact).returning(StoryFact.id, sort_by_parameter_order=True), rows
    ).all()
    return ids[-1]


class Learned(NamedTuple):
    last_fact: int | None  # `add_facts`
    report: int  # `add_report`
    changes: int | None  # `touch`


# A decision's learning in one statement on PostgreSQL, with one array parameter: the
# decider is the service's one serial stage, and SQLAlchemy's ordered bulk INSERT and two
# more round trips cost it more than the learning they store. The facts' ids follow the
# array's order (the insert takes the rows as the ORDER BY yields them).
_LEARN_POSTGRES = text(
    "WITH added AS ("
    " INSERT INTO story_facts (story_id, text, article_id, created_at)"
    " SELECT :story_id, fact.text, :article_id, CAST(:now AS timestamptz)"
    " FROM unnest(CAST(:texts AS text[])) WITH ORDINALITY AS fact(text, position)"
    " ORDER BY fact.position"
    " RETURNING id"
    "), report AS ("
    " INSERT INTO story_reports (story_id, article_id, published)"
    " VALUES (:story_id, :article_id, CAST(:published AS timestamptz))"
    " RETURNING id"
    "), counted AS ("
    " UPDATE stories SET changes = changes + 1 WHERE id = :story_id RETURNING changes"
    ") SELECT (SELECT max(id) FROM added), (SELECT id FROM report), (SELECT changes FROM counted)"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("published", type_=UTCDateTime()))


def learn(
    session: Session,
    story_id: str,
    article_id: int,
    texts: Sequence[str],
    published: datetime | None,
) -> Learned:
    """What a story learned from a decided article: its fact sentences (`add_facts`), one
    report (`add_report`) and one more change (`touch`), under the story's lock."""
    if session.get_bind().dialect.name != "postgresql":
        last_fact = add_facts(session, story_id, article_id, texts)
        report = add_report(session, story_id, article_id, published)
        return Learned(last_fact, report, touch(session, story_id))
    session.flush()  # a text statement does not autoflush: rows added before come first
    values = {
        "story_id": story_id,
        "article_id": article_id,
        "now": utcnow(),
        "texts": list(texts),
        "published": published,
    }
    last_fact, report, changes = session.execute(_LEARN_POSTGRES, values).one()
    return Learned(last_fact, report, changes)


def add_report(session: Session, story_id: str, article_id: int, published: datetime | None) -> int:
    """Count one report of the story; its id."""
    report: int = session.execute(
        insert(StoryReport)
        .values(story_id=story_id, article_id=article_id, published=published)
        .returning(StoryReport.id)
    ).scalar_one()
    return report


def add_development(
    session: Session, decision: Decision, article_id: int, detected_at: datetime
) -> int:
    """Record the development a decision found; its id."""
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
    return development.id


class Rejection(NamedTuple):
    """A report people said is not about the story ("wrong story")."""

    story_id: str
    title: str | None
    text: str


def unlearn(session: Session, story_id: str, article_id: int) -> None:
    """The story forgets what it learned from the article and stops counting it as a
    report; the development and alert it made stay (decisions are history). Every
    tracker rebuilds (`bump_version`), so all workers forget it alike."""
    session.execute(
        delete(StoryFact).where(StoryFact.story_id == story_id, StoryFact.article_id == article_id)
    )
    session.execute(
        delete(StoryReport).where(
            StoryReport.story_id == story_id, StoryReport.article_id == article_id
        )
    )
    bump_version(session)


def bump_version(session: Session) -> None:
    """Make every worker's tracker rebuild from the database at its next item."""
    row = session.get(Meta, STORIES_VERSION_KEY)
    value = uuid.uuid4().hex[:16]
    if row is None:
        session.add(Meta(key=STORIES_VERSION_KEY, value=value))
    else:
        row.value = value


def feedback_for_trackers(session: Session) -> tuple[list[Rejection], dict[str, int]]:
    """What trackers learn from feedback: the rejected reports, oldest first, and the
    number of "not new" verdicts per story."""
    rejections = [
        Rejection(story_id, title, text)
        for story_id, title, text in session.execute(
            select(Feedback.story_id, Article.title, Article.text)
            .join(Article, Article.id == Feedback.article_id)
            .where(Feedback.verdict == "wrong-story")
            .order_by(Feedback.id)
        )
    ]
    not_new = {
        story_id: count
        for story_id, count in session.execute(
            select(Feedback.story_id, func.count())
            .where(Feedback.verdict == "not-new")
            .group_by(Feedback.story_id)
        )
    }
    return rejections, not_new
