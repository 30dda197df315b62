"""The articles table as copy detection asks it: by canonical URL, by text fingerprint,
by shared MinHash bands, the chain of copies, and what a site wall needs to compare.

Each function runs inside the caller's transaction; only `add` and `add_bands` write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from worker.store.schema import Article, ArticleBand, Item

# The stored article as the use cases hold it between store calls.
ArticleRow = Article


class StoredArticle(Protocol):
    """What the outbox reads of the stored article that made the development."""

    @property
    def id(self) -> int: ...
    @property
    def url(self) -> str | None: ...
    @property
    def canonical_url(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def published(self) -> datetime | None: ...


def by_url(session: Session, canonical: str) -> int | None:
    """The id of the article stored under this canonical URL."""
    return session.scalar(select(Article.id).where(Article.canonical_url == canonical))


def by_fingerprint(session: Session, fingerprint: str) -> int | None:
    """The first article whose normalized text has this fingerprint."""
    return session.scalar(
        select(Article.id).where(Article.content_hash == fingerprint).order_by(Article.id).limit(1)
    )


def sharing_bands(session: Session, bands: list[str]) -> list[tuple[int, bytes | None]]:
    """(id, MinHash signature) of the articles that share a band, oldest first."""
    rows = session.execute(sharing_bands_query(bands))
    return [(int(row[0]), row[1]) for row in rows]


def sharing_bands_query(bands: list[str]) -> Select[int, bytes | None]:
    """The lookup `sharing_bands` runs; fast only while PostgreSQL's statistics of
    `article_bands` are current (worker.store.statistics)."""
    return (
        select(Article.id, Article.signature)
        .join(ArticleBand, ArticleBand.article_id == Article.id)
        .where(ArticleBand.band.in_(bands))
        .distinct()
        .order_by(Article.id)
    )


def copied_from(session: Session, article_id: int) -> int | None:
    """The article this one was recorded as a copy of, if any."""
    return session.scalar(select(Article.duplicate_of).where(Article.id == article_id))


def title_and_fingerprint(session: Session, article_id: int) -> tuple[str | None, str] | None:
    """The page title and text fingerprint of an article, or None when it is gone."""
    article = session.get(Article, article_id)
    return None if article is None else (article.title, article.content_hash)


def announced_title(session: Session, article_id: int) -> str | None:
    """The title a feed item announced the article with."""
    return session.scalar(select(Item.title).where(Item.article_id == article_id).limit(1))


def add(session: Session, **columns: object) -> Article:
    """Store a new article (see `Article` for the columns); flushed, so it has its id."""
    row = Article(**columns)
    session.add(row)
    session.flush()
    return row


def add_bands(session: Session, article_id: int, bands: list[str]) -> None:
    """Index the article under its MinHash bands, for `sharing_bands`. One bulk INSERT:
    forty ORM objects an article cost more than the lookup they serve."""
    rows = [{"band": band, "article_id": article_id} for band in sorted(set(bands))]
    if rows:
        session.execute(insert(ArticleBand), rows)


def get(session: Session, article_id: int) -> Article | None:
    return session.get(Article, article_id)
