"""Developments and their sources: which development an article made or repeats, the
outlets recorded on it, and the count its alert shows as "also reported by".

Each function runs inside the caller's transaction.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from worker.alerts.stored import alert_from_json, alert_to_json
from worker.store.articles import StoredArticle
from worker.store.schema import Alert, Article, Development, DevelopmentSource


def made_or_reported_by(session: Session, article_id: int) -> int | None:
    """The development the article made or, failing that, one it is a source of."""
    development = session.scalar(select(Development.id).where(Development.article_id == article_id))
    if development is None:
        development = session.scalar(
            select(Development.id)
            .join(DevelopmentSource, DevelopmentSource.development_id == Development.id)
            .where(DevelopmentSource.article_id == article_id)
            .limit(1)
        )
    return development


def made_by(session: Session, story_id: str, article_id: int) -> int | None:
    """The development of the story that this article made."""
    return session.scalar(
        select(Development.id).where(
            Development.article_id == article_id, Development.story_id == story_id
        )
    )


def story_of(session: Session, development_id: int) -> str | None:
    story: str | None = session.scalar(
        select(Development.story_id).where(Development.id == development_id)
    )
    return story


def add_source(session: Session, development_id: int, article: StoredArticle, how: str) -> None:
    """Record the article as a source of the development (once)."""
    exists = session.scalar(
        select(DevelopmentSource.id).where(
            DevelopmentSource.development_id == development_id,
            DevelopmentSource.article_id == article.id,
        )
    )
    if exists is None:
        session.add(
            DevelopmentSource(
                development_id=development_id,
                article_id=article.id,
                url=article.url,
                source=article.source,
                how=how,
            )
        )
        session.flush()


def other_sources(session: Session, development_id: int) -> list[tuple[str | None, str | None]]:
    """(source, url) of each other outlet recorded on the development, first recorded
    first, one per outlet (as `recount_sources` counts them)."""
    development = session.get(Development, development_id)
    original = session.get(Article, development.article_id) if development else None
    own = (original.source or original.url) if original else None
    seen: set[str | None] = {own, None}
    found: list[tuple[str | None, str | None]] = []
    rows = session.execute(
        select(DevelopmentSource.source, DevelopmentSource.url)
        .where(DevelopmentSource.development_id == development_id)
        .order_by(DevelopmentSource.id)
    )
    for source, url in rows:
        if (source or url) not in seen:
            seen.add(source or url)
            found.append((source, url))
    return found


def recount_sources(session: Session, development_id: int) -> int:
    """Count the distinct other outlets recorded on the development and show the count on
    its alert; returns it."""
    # Lock the alert first: two copies recorded at once must not each count only their own.
    alert = session.scalar(
        select(Alert).where(Alert.development_id == development_id).with_for_update()
    )
    # Distinct other outlets: a site republishing its own story is not another source.
    others = len(other_sources(session, development_id))
    if alert is not None:
        content = alert_from_json(alert.content)
        if content.also_reported_by != others:
            alert.content = alert_to_json(dataclasses.replace(content, also_reported_by=others))
    return others


def drop_source(session: Session, story_id: str, article_id: int) -> tuple[int, ...]:
    """Take the article off the story's developments it was recorded on ("also reported
    by"), recounting each: a person said it is a development of its own. Returns those
    developments' ids. Follow-ups already sent stay sent."""
    development_ids = tuple(
        session.scalars(
            select(DevelopmentSource.development_id)
            .join(Development, Development.id == DevelopmentSource.development_id)
            .where(Development.story_id == story_id, DevelopmentSource.article_id == article_id)
        )
    )
    if development_ids:
        session.execute(
            delete(DevelopmentSource).where(
                DevelopmentSource.article_id == article_id,
                DevelopmentSource.development_id.in_(development_ids),
            )
        )
        for development_id in development_ids:
            recount_sources(session, development_id)
    return development_ids
