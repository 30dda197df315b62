"""Prepared term vectors (worker.decide.match.ArticleView): written with the article by
the process that stores it; the decision reads it with its item
(worker.store.decisions.to_decide) and drops it (decisions.finish_decisions)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from worker.store.schema import PreparedView


def put(session: Session, article_id: int, fingerprint: bytes, data: bytes) -> None:
    session.add(PreparedView(article_id=article_id, fingerprint=fingerprint, data=data))
