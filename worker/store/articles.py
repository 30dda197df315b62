"""The articles table as copy detection asks it: by canonical URL, by text fingerprint,
by shared MinHash bands, the chain of copies, and what a site wall needs to compare.

Each function runs inside the caller's transaction; only `add`, `add_bands` and `store`
write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy import (
    CompoundSelect,
    Integer,
    LargeBinary,
    Select,
    bindparam,
    cast,
    insert,
    literal_column,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Label

from worker.store import items, views
from worker.store.schema import Article, ArticleBand, Item, UTCDateTime
from worker.utc import utcnow

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


class CopyCandidate(NamedTuple):
    """An earlier article the new one may copy, as `copy_candidates` finds it."""

    step: int  # the URL's position in `urls`, then `same_text_step(urls)`, then one more
    id: int
    signature: bytes | None  # read for a band candidate only


def copy_candidates(
    session: Session, urls: Sequence[str], fingerprint: str, bands: Sequence[str]
) -> list[CopyCandidate]:
    """Every earlier article the new one may copy, in one statement (each lookup was a
    round trip of its own): stored under one of `urls` (step = the URL's position), the
    first with the same text fingerprint (step `same_text_step(urls)`), then those sharing
    a MinHash band with it (the step after, with their signatures), ordered by step and
    id. One snapshot, so the lookups agree with each other."""
    rows = session.execute(copy_candidates_query(urls, fingerprint, bands))
    return [CopyCandidate(int(r[0]), int(r[1]), r[2]) for r in rows]


def copy_candidates_query(
    urls: Sequence[str], fingerprint: str, bands: Sequence[str]
) -> CompoundSelect[int, int, bytes | None]:
    """The statement `copy_candidates` runs. Its band lookup is fast only while
    PostgreSQL's statistics of `article_bands` are current (worker.store.statistics)."""
    # Typed: PostgreSQL resolves a UNION's column types pairwise, NULL with NULL as text.
    no_signature = cast(null(), LargeBinary).label("signature")

    def step(number: int) -> Label[int]:
        return literal_column(str(number), Integer).label("step")

    members: list[Select[int, int, bytes | None]] = [
        select(step(number), Article.id, no_signature).where(Article.canonical_url == url)
        for number, url in enumerate(urls)
    ]
    first_same_text = (
        select(Article.id)
        .where(Article.content_hash == fingerprint)
        .order_by(Article.id)
        .limit(1)
        .scalar_subquery()
    )
    same_text = same_text_step(urls)
    members.append(
        select(step(same_text), Article.id, no_signature).where(Article.id == first_same_text)
    )
    # A join from the band rows found, not `id IN (subquery)`: without statistics
    # PostgreSQL runs that semi-join by scanning every article (1.5 s at 30,000 articles,
    # against 75 ms for the join before the first analysis).
    members.append(
        select(step(same_text + 1), Article.id, Article.signature.label("signature"))
        .join(ArticleBand, ArticleBand.article_id == Article.id)
        .where(ArticleBand.band.in_(list(bands)))
        .distinct()
    )
    return union_all(*members).order_by(text("step"), text("id"))


def same_text_step(urls: Sequence[str]) -> int:
    """The step of `copy_candidates`' same-text candidate (the band candidates' is next)."""
    return len(urls)


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
    """Index the article under its MinHash bands, for `copy_candidates`. One bulk INSERT:
    forty ORM objects an article cost more than the lookup they serve."""
    rows = [{"band": band, "article_id": article_id} for band in sorted(set(bands))]
    if rows:
        session.execute(insert(ArticleBand), rows)


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An article as the storing step writes it (see `Article` for the columns)."""

    canonical_url: str
    url: str | None
    title: str | None
    source: str | None
    published: datetime | None
    text: str
    extraction: str  # page | summary
    content_hash: str
    signature: bytes | None
    duplicate_of: int | None


def store(
    session: Session,
    item_id: int,
    article: NewArticle,
    bands: Sequence[str],
    view: tuple[bytes, bytes] | None,
    now: datetime,
) -> int:
    """Write a stored item's article with its bands (for `copy_candidates`) and prepared
    view (worker.decide.prepared), and point the item at it (`items.mark_stored`); the
    article's id. A copy (`duplicate_of`) gets neither bands nor view: copies of it are
    found through its original. On PostgreSQL one statement, where the ORM took four."""
    original = article.duplicate_of is None
    if session.get_bind().dialect.name != "postgresql":
        row = add(session, **asdict(article))
        if original:
            add_bands(session, row.id, list(bands))
            if view is not None:
                views.put(session, row.id, *view)
        items.mark_stored(session, item_id, row.id, now)
        return row.id
    session.flush()  # a text statement does not autoflush: rows added before come first
    values = {
        **asdict(article),
        "created_at": utcnow(),
        "item_id": item_id,
        "now": now,
        "bands": sorted(set(bands)) if original else [],
        "view_fingerprint": view[0] if original and view is not None else None,
        "view_data": view[1] if original and view is not None else None,
    }
    stored: int = session.execute(_STORE_POSTGRES, values).scalar_one()
    return stored


# The rows `store` writes, as the ORM would: foreign keys to the new article are checked
# at the statement's end, when it exists. `error` is emptied as `items.mark_stored` does.
# The commit does not wait for the disk (synchronous_commit off for this transaction):
# lost with the database's crash, the item is still `new` without an article, so its
# decision finds it "missing" and the sweep stores it again; a later durable commit
# (copies of it, its decision) makes it durable first, since WAL is written in order.
_STORE_POSTGRES = text(
    "WITH article AS ("
    " INSERT INTO articles (canonical_url, url, title, source, published, text, extraction,"
    " content_hash, signature, duplicate_of, created_at)"
    " VALUES (:canonical_url, :url, :title, :source, CAST(:published AS timestamptz), :text,"
    " :extraction, :content_hash, :signature, :duplicate_of, CAST(:created_at AS timestamptz))"
    " RETURNING id"
    "), bands AS ("
    " INSERT INTO article_bands (band, article_id)"
    " SELECT band, article.id FROM article, unnest(CAST(:bands AS text[])) AS band"
    "), view AS ("
    " INSERT INTO article_views (article_id, fingerprint, data)"
    " SELECT article.id, :view_fingerprint, :view_data FROM article"
    " WHERE CAST(:view_fingerprint AS bytea) IS NOT NULL"
    "), item AS ("
    " UPDATE items SET article_id = (SELECT id FROM article), queued_at = CAST(:now AS"
    " timestamptz), attempts = 0, error = NULL WHERE id = :item_id"
    " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"
    ") SELECT id FROM article"
).bindparams(
    bindparam("published", type_=UTCDateTime()),
    bindparam("created_at", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
    bindparam("signature", type_=LargeBinary()),
    bindparam("view_fingerprint", type_=LargeBinary()),
    bindparam("view_data", type_=LargeBinary()),
)


def get(session: Session, article_id: int) -> Article | None:
    return session.get(Article, article_id)


def lock(session: Session, article_id: int) -> None:
    """Hold the article's row until the transaction ends (PostgreSQL; a SQLite write
    transaction holds the whole database already)."""
    session.execute(select(Article.id).where(Article.id == article_id).with_for_update())


def assign_story(session: Session, article_id: int, story_id: str) -> None:
    """The article is the story's (a person gave an unmatched one to it)."""
    session.execute(update(Article).where(Article.id == article_id).values(story_id=story_id))
