"""Record later reports of an alerted development on it, instead of alerting again.

Two ways an article reports a development already alerted:
1. a copy: the same text under another URL (exact or near duplicate of its article);
2. a rewrite: another outlet's own article that the tracker finds repeating the specifics
   of one of the story's recent developments (worker.decide.repeats, `Decision.repeats`).
Either way the article is recorded as a source of that development, and the alert's
`also_reported_by` counts the distinct other outlets, so deliveries still waiting (and
`storywatch alerts list`) show it.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.alerts.stored import alert_from_json, alert_to_json
from worker.observe.logs import get_logger
from worker.store import schema
from worker.store.schema import Alert, Development, DevelopmentSource

log = get_logger(__name__)


def record_copy(session: Session, article: schema.Article, original_id: int) -> int | None:
    """The article copies `original_id`: record it on the development that article made,
    or, when that article was itself a later report of a development (another outlet's
    version got processed first), on that development."""
    development = session.scalar(select(Development).where(Development.article_id == original_id))
    if development is None:
        development = session.scalar(
            select(Development)
            .join(DevelopmentSource, DevelopmentSource.development_id == Development.id)
            .where(DevelopmentSource.article_id == original_id)
            .limit(1)
        )
    if development is None:
        return None
    _record(session, development, article, "copy")
    return development.id


def record_repeat(
    session: Session, article: schema.Article, story_id: str, development_key: str
) -> int | None:
    """The tracker found that the article reports again the development it names by its
    article id (`Decision.repeats`): record the article on that development."""
    if not development_key.isdigit():
        return None
    development = session.scalar(
        select(Development).where(
            Development.article_id == int(development_key), Development.story_id == story_id
        )
    )
    if development is None:
        return None
    _record(session, development, article, "rewrite")
    return development.id


def _record(session: Session, development: Development, article: schema.Article, how: str) -> None:
    exists = session.scalar(
        select(DevelopmentSource.id).where(
            DevelopmentSource.development_id == development.id,
            DevelopmentSource.article_id == article.id,
        )
    )
    if exists is None:
        session.add(
            DevelopmentSource(
                development_id=development.id,
                article_id=article.id,
                url=article.url,
                source=article.source,
                how=how,
            )
        )
        session.flush()
    # Lock the alert first: two copies recorded at once must not each count only their own.
    alert = session.scalar(
        select(Alert).where(Alert.development_id == development.id).with_for_update()
    )
    original = session.get(schema.Article, development.article_id)
    own = (original.source or original.url) if original else None
    reports = session.execute(
        select(DevelopmentSource.source, DevelopmentSource.url).where(
            DevelopmentSource.development_id == development.id
        )
    )
    # Distinct other outlets: a site republishing its own story is not another source.
    others = len({source or url for source, url in reports} - {own, None})
    if alert is not None:
        content = alert_from_json(alert.content)
        if content.also_reported_by != others:
            alert.content = alert_to_json(dataclasses.replace(content, also_reported_by=others))
    log.info(
        "development.also_reported",
        development_id=development.id,
        article_id=article.id,
        source=article.source,
        how=how,
        also_reported_by=others,
    )
