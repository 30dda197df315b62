"""Is this article a copy of one we already have? Same URL, same text, or nearly so.

Copies are found in three steps, cheapest first: the canonical URL (and the page's own
rel=canonical), the fingerprint of the normalized text, then MinHash LSH bands stored
per article, so near-duplicate candidates are one indexed lookup away in any process.

It also spots a site that serves one page for every link (`site_boilerplate`), whose
text is not the article's. It must not: fetch, decide novelty, or write anything.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.dedupe import (
    MinHashSignature,
    is_near_duplicate,
    signature_from_bytes,
    text_fingerprint,
)
from worker.models import Page
from worker.store import schema
from worker.store.schema import ArticleBand
from worker.text import content_terms
from worker.urls import canonicalize_url

NEAR_DUPLICATE = 0.8  # Jaccard or containment of word 5-shingles
MAX_URL_KEY = 2048  # articles.canonical_url


def storage_key(canonical_url: str) -> str:
    """The canonical URL as stored (articles.canonical_url is at most 2048 characters):
    longer ones keep their start and a hash of the whole, so they stay unique."""
    if len(canonical_url) <= MAX_URL_KEY:
        return canonical_url
    suffix = "#storywatch-sha256=" + hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()
    return canonical_url[: MAX_URL_KEY - len(suffix)] + suffix


def article_by_url(session: Session, canonical: str) -> int | None:
    return session.scalar(
        select(schema.Article.id).where(schema.Article.canonical_url == canonical)
    )


def find_copy(
    session: Session,
    canonical: str,
    page: Page,
    text: str,
    signature: MinHashSignature,
    bands: list[str],
) -> int | None:
    """The id of the earlier article this one copies (same URL, same text, or near-same
    text), traced back to the article that was decided: a copy of a copy still counts
    for the original's story and development."""
    declared = storage_key(canonicalize_url(page.canonical_url)) if page.canonical_url else None
    for url in (canonical, declared):
        if url and (found := article_by_url(session, url)) is not None:
            return _original(session, found)
    exact = session.scalar(
        select(schema.Article.id)
        .where(schema.Article.content_hash == text_fingerprint(text))
        .order_by(schema.Article.id)
        .limit(1)
    )
    if exact is not None:
        return _original(session, exact)
    candidates = session.execute(
        select(schema.Article.id, schema.Article.signature)
        .join(ArticleBand, ArticleBand.article_id == schema.Article.id)
        .where(ArticleBand.band.in_(bands))
        .distinct()
        .order_by(schema.Article.id)
    )
    for candidate_id, blob in candidates:
        if blob and is_near_duplicate(signature, signature_from_bytes(blob), NEAR_DUPLICATE):
            return int(candidate_id)
    return None


def _original(session: Session, article_id: int) -> int:
    """Follow `duplicate_of` to the first article of a chain of copies."""
    seen = {article_id}
    while (
        parent := session.scalar(
            select(schema.Article.duplicate_of).where(schema.Article.id == article_id)
        )
    ) is not None and parent not in seen:
        seen.add(parent)
        article_id = parent
    return article_id


# Titles sharing less than this share of the shorter one's words report different news.
UNRELATED_TITLES = 0.2


def _unrelated(a: str, b: str) -> bool:
    """Titles that share almost none of the shorter one's words: a short headline whose
    words all stand in a longer one is related to it."""
    words_a, words_b = set(content_terms(a)), set(content_terms(b))
    return len(words_a & words_b) < UNRELATED_TITLES * min(len(words_a), len(words_b))


def site_boilerplate(
    session: Session, page: Page, url: str | None, title: str | None
) -> int | None:
    """The id of an earlier article of the same host with exactly this page's text under
    an unrelated item title, when the page's own title is unrelated to the item's; None
    otherwise.

    A site that serves one page for every link (a consent wall, a bot check, a paywall
    notice) gives different stories the same text under its own title; a syndicated copy
    has the same text under a related title, usually from another host.
    """
    if not url or not title or (page.title and not _unrelated(page.title, title)):
        return None
    host = urlsplit(url).hostname
    earlier = session.execute(
        select(schema.Article.id, schema.Item.url, schema.Item.title)
        .join(schema.Item, schema.Item.article_id == schema.Article.id)
        .where(schema.Article.content_hash == text_fingerprint(page.text))
        .order_by(schema.Article.id)
        .limit(20)
    )
    for article_id, other_url, other_title in earlier:
        if not other_url or not other_title or urlsplit(other_url).hostname != host:
            continue
        if _unrelated(title, other_title):
            return int(article_id)
    return None
