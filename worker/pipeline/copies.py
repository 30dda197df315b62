"""Is this article a copy of one we already have? Same URL, same text, or nearly so.

Copies are found in three steps, in order: the canonical URL (and the page's own
rel=canonical), the fingerprint of the normalized text, then MinHash LSH bands stored
per article, so near-duplicate candidates are one indexed lookup away in any process.
The three are one statement (`articles.copy_candidates`): one round trip, one snapshot.

It also spots a site that serves one page for every link (`site_wall`), whose text is
not the article's. It must not: fetch, decide novelty, or write anything.
"""

from __future__ import annotations

import hashlib

from worker.articles.dedupe import (
    MinHashSignature,
    is_near_duplicate,
    signature_from_bytes,
    text_fingerprint,
)
from worker.articles.urls import canonicalize_url
from worker.models import Page
from worker.store import articles
from worker.store.engine import DbSession
from worker.text.terms import content_terms

NEAR_DUPLICATE = 0.8  # Jaccard or containment of word 5-shingles
MAX_URL_KEY = 2048  # articles.canonical_url


def storage_key(canonical_url: str) -> str:
    """The canonical URL as stored (articles.canonical_url is at most 2048 characters):
    longer ones keep their start and a hash of the whole, so they stay unique."""
    if len(canonical_url) <= MAX_URL_KEY:
        return canonical_url
    suffix = "#storywatch-sha256=" + hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()
    return canonical_url[: MAX_URL_KEY - len(suffix)] + suffix


def article_by_url(session: DbSession, canonical: str) -> int | None:
    return articles.by_url(session, canonical)


def find_copy(
    session: DbSession,
    canonical: str,
    page: Page,
    fingerprint: str,
    signature: MinHashSignature,
    bands: list[str],
) -> int | None:
    """The id of the earlier article this one copies (same URL, same text, or near-same
    text), traced back to the article that was decided: a copy of a copy still counts
    for the original's story and development."""
    declared = storage_key(canonicalize_url(page.canonical_url)) if page.canonical_url else None
    urls = [canonical] if declared in (None, canonical) else [canonical, declared]
    same_text = articles.same_text_step(urls)
    for step, found, blob in articles.copy_candidates(session, urls, fingerprint, bands):
        if step <= same_text:  # the same URL or the same text: a copy, whatever its story
            return _original(session, found)
        if blob and is_near_duplicate(signature, signature_from_bytes(blob), NEAR_DUPLICATE):
            return found  # a band candidate has bands: it is an original itself
    return None


def _original(session: DbSession, article_id: int) -> int:
    """Follow `duplicate_of` to the first article of a chain of copies."""
    seen = {article_id}
    while (parent := articles.copied_from(session, article_id)) is not None and parent not in seen:
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


def site_wall(session: DbSession, original_id: int, page: Page, title: str | None) -> bool:
    """Is `page`, found to repeat article `original_id`, a page the site serves for every
    link (a consent wall, a bot check, a paywall notice) rather than the article?

    It is when both pages have the same text under the same page title while their feed
    items announce unrelated stories. A syndicated copy repeats the text under a related
    headline; a wall repeats its own title for whatever story the link was for.
    """
    original = articles.title_and_fingerprint(session, original_id)
    if original is None or not title or not page.title or original[0] != page.title:
        return False
    if original[1] != text_fingerprint(page.text):
        return False  # found by URL or as a near copy: not the same page
    announced = articles.announced_title(session, original_id)
    return announced is not None and _unrelated(title, announced)
