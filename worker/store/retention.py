"""What retention deletes, a batch at a time: processed items, the text of old articles
that made no development, and delivered deliveries. Alerts, developments, their sources,
stories and what the stories learned are never touched.

Each function handles at most `limit` rows in the caller's transaction and returns how
many it handled, so the use case runs short transactions until one returns 0.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from worker.store.schema import (
    Article,
    ArticleBand,
    Delivery,
    Development,
    Feed,
    Item,
    PreparedView,
)

# What a pruned article keeps of its text: its lead, which is what a story's embedding
# index reads of it (worker.decide.semantic), and what `check` and the desk quote.
KEPT_TEXT_CHARS = 1_000


def delete_items(session: Session, before: datetime, limit: int) -> int:
    """Items processed (done or failed) and first seen before `before`; held ones too when
    their feed is stopped or disabled, since nothing will release them."""
    idle = select(Feed.id).where((Feed.enabled.is_(False)) | (Feed.stopped.is_not(None)))
    ids = list(
        session.scalars(
            select(Item.id)
            .where(
                Item.created_at < before,
                Item.status != "new",
                (Item.status != "held") | Item.feed_id.in_(idle),
            )
            .order_by(Item.id)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(Item).where(Item.id.in_(ids)))
    return len(ids)


def trim_articles(session: Session, before: datetime, limit: int) -> int:
    """Articles stored before `before` that made no development keep their title, URL,
    fingerprint and lead; their full text, MinHash signature, bands and any prepared view
    go (a near-copy of a month-old article is no longer looked for; an exact copy still
    is)."""
    made = select(Development.article_id)
    ids = list(
        session.scalars(
            select(Article.id)
            .where(
                Article.created_at < before,
                Article.signature.is_not(None),
                Article.id.not_in(made),
            )
            .order_by(Article.id)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(ArticleBand).where(ArticleBand.article_id.in_(ids)))
        # A view no decision took (its item failed): nothing will read it.
        session.execute(delete(PreparedView).where(PreparedView.article_id.in_(ids)))
        session.execute(
            update(Article)
            .where(Article.id.in_(ids))
            .values(text=func.substr(Article.text, 1, KEPT_TEXT_CHARS), signature=None)
        )
    return len(ids)


def delete_deliveries(session: Session, before: datetime, limit: int) -> int:
    """Deliveries delivered before `before` (failed and dead ones stay for the operator).
    An alert's delivery whose follow-up to that destination is still to be sent stays
    too: the follow-up goes only where the alert is recorded as delivered."""
    update_ = aliased(Delivery)
    waiting_update = exists().where(
        Delivery.kind == "alert",
        update_.alert_id == Delivery.alert_id,
        update_.destination_id == Delivery.destination_id,
        update_.kind == "update",
        update_.status.in_(("pending", "failed")),
    )
    ids = list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.status == "delivered", Delivery.delivered_at < before)
            .where(~waiting_update)
            .order_by(Delivery.id)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
    return len(ids)
