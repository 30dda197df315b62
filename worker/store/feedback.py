"""People's verdicts and mutes: recorded here, read by the desk and the outbox.

Each function runs inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from worker.store.schema import Alert, Development, Feedback, StoryMute

VERDICTS = ("not-new", "wrong-story", "development")


@dataclass(frozen=True, slots=True)
class Verdict:
    story_id: str
    article_id: int
    alert_id: str | None
    verdict: str
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlertTarget:
    """What an alert was about: the story and the article that made it."""

    alert_id: str
    story_id: str
    article_id: int


def alert_target(session: Session, alert_id: str) -> AlertTarget | None:
    row = session.execute(
        select(Alert.story_id, Development.article_id)
        .join(Development, Development.id == Alert.development_id)
        .where(Alert.id == alert_id)
    ).first()
    return None if row is None else AlertTarget(alert_id, row[0], row[1])


def record(
    session: Session,
    *,
    story_id: str,
    article_id: int,
    verdict: str,
    now: datetime,
    alert_id: str | None = None,
    note: str | None = None,
) -> bool:
    """Record a verdict; False when the same one was already given on that article."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}: one of {', '.join(VERDICTS)}")
    exists = session.scalar(
        select(Feedback.id).where(
            Feedback.article_id == article_id,
            Feedback.story_id == story_id,
            Feedback.verdict == verdict,
        )
    )
    if exists is not None:
        return False
    session.add(
        Feedback(
            story_id=story_id,
            article_id=article_id,
            alert_id=alert_id,
            verdict=verdict,
            note=note,
            created_at=now,
        )
    )
    session.flush()
    return True


def given(session: Session, story_id: str, article_id: int) -> set[str]:
    """The verdicts already given on the story's article."""
    return set(
        session.scalars(
            select(Feedback.verdict).where(
                Feedback.story_id == story_id, Feedback.article_id == article_id
            )
        )
    )


def verdicts(
    session: Session, *, story_id: str | None = None, limit: int = 500
) -> tuple[Verdict, ...]:
    """The newest verdicts first, of one story or all."""
    query = select(Feedback).order_by(Feedback.id.desc()).limit(limit)
    if story_id is not None:
        query = query.where(Feedback.story_id == story_id)
    return tuple(
        Verdict(f.story_id, f.article_id, f.alert_id, f.verdict, f.note, f.created_at)
        for f in session.scalars(query)
    )


def mute(session: Session, story_id: str, until: datetime | None, now: datetime) -> None:
    """Mute a story until `until` (None: for good), replacing an earlier mute."""
    row = session.get(StoryMute, story_id)
    if row is None:
        session.add(StoryMute(story_id=story_id, until=until, created_at=now))
    else:
        row.until, row.created_at = until, now
    session.flush()


def unmute(session: Session, story_id: str) -> bool:
    return bool(session.execute(delete(StoryMute).where(StoryMute.story_id == story_id)).rowcount)  # type: ignore[attr-defined]


def muted(session: Session, story_id: str, now: datetime) -> bool:
    return (
        session.scalar(
            select(StoryMute.story_id).where(
                StoryMute.story_id == story_id,
                or_(StoryMute.until.is_(None), StoryMute.until > now),
            )
        )
        is not None
    )


def mutes(session: Session, now: datetime) -> dict[str, datetime | None]:
    """The stories muted now, each with the end of its mute (None: for good)."""
    return {
        row.story_id: row.until
        for row in session.scalars(
            select(StoryMute).where(or_(StoryMute.until.is_(None), StoryMute.until > now))
        )
    }
