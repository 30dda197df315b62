"""Prepared term vectors (worker.decide.match.ArticleView): written with the article by
the process that stores it, taken (read and deleted at once) by the decision."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from worker.store.schema import PreparedView


def put(session: Session, article_id: int, fingerprint: bytes, data: bytes) -> None:
    session.add(PreparedView(article_id=article_id, fingerprint=fingerprint, data=data))


def take(session: Session, article_id: int) -> tuple[bytes, bytes] | None:
    """(fingerprint, data) of the article's prepared view, deleted in the caller's
    transaction (a decision that rolls back leaves it for the next run); None when there
    is none."""
    row = session.execute(
        delete(PreparedView)
        .where(PreparedView.article_id == article_id)
        .returning(PreparedView.fingerprint, PreparedView.data)
    ).first()
    return (bytes(row[0]), bytes(row[1])) if row is not None else None
