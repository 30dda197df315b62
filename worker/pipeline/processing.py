"""Process one feed item in two steps. `store_item` (here): fetch and clean the page,
check it for a copy, store the article. `decide_item` (worker.pipeline.deciding): match,
judge, and write the development and its alert.

The steps are separate tasks (worker.service.tasks): storing needs no story tracker, so
any number of processes store at once while decisions queue for the deciding one.
`process_item` runs both, in this process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from structlog.contextvars import bound_contextvars
from structlog.typing import FilteringBoundLogger

from worker.articles.dedupe import (
    lsh_band_keys,
    minhash_signature,
    signature_to_bytes,
    text_fingerprint,
)
from worker.articles.extract import extract_page
from worker.articles.urls import canonicalize_url
from worker.decide.prepared import encode_view, prepare_view, view_fingerprint
from worker.errors import ExtractionError, FetchError, TransientFetchError
from worker.models import Page
from worker.observe import metrics
from worker.observe.logs import get_logger
from worker.pipeline.copies import article_by_url, find_copy, site_wall, storage_key
from worker.pipeline.deciding import decide_item
from worker.pipeline.results import (
    MAX_ITEM_ATTEMPTS,
    ItemResult,
    Stored,
    finish_item,
    finish_settled,
)
from worker.pipeline.runtime import Runtime
from worker.store import articles, items
from worker.store.engine import autocommit, transaction
from worker.store.items import QueuedItem, Settled
from worker.text.terms import bounded_text

log = get_logger(__name__)

MIN_SUMMARY_CHARS = 40  # a summary shorter than this carries no fact worth deciding on


def process_item(runtime: Runtime, item_id: int, *, page_attempts: int = 3) -> ItemResult:
    """Take one item from `new` to `done` (or `failed`) in this process: `store_item`,
    then `decide_item`."""
    stored = store_item(runtime, item_id, page_attempts=page_attempts)
    if isinstance(stored, ItemResult):
        return stored
    return decide_item(runtime, item_id)


def store_item(runtime: Runtime, item_id: int, *, page_attempts: int = 3) -> ItemResult | Stored:
    """Fetch, clean and store the item's article, with its copy check; idempotently.

    Needs no story tracker: any number of processes store at once, while the decisions
    queue for whichever process decides (`decide_item`). A transient page failure raises
    TransientFetchError during the first `page_attempts` attempts, so the caller can retry
    later; after that, and at once for permanent failures, the feed's summary stands in
    for the page.
    """
    taken = _take_up(runtime, item_id)
    if not isinstance(taken, _Taken):
        return taken
    snapshot, canonical = taken.snapshot, taken.canonical
    allow_fallback = snapshot.attempts >= page_attempts
    bound = log.bind(item_id=item_id, feed_id=snapshot.feed_id, url=snapshot.url)

    # Bound for every logger, not only ours: what httpx or trafilatura log about this page
    # names the item it was fetched for.
    with (
        bound_contextvars(item_id=item_id, feed_id=snapshot.feed_id, url=snapshot.url),
        metrics.observe_stage("fetch_extract"),
    ):
        page, extraction = _obtain_text(runtime, snapshot, allow_fallback=allow_fallback, log=bound)
    if page is None:
        with transaction(runtime.sessions) as session:
            return finish_item(session, item_id, "failed", error=extraction)

    return _store_page(runtime, item_id, snapshot, canonical, page, extraction, bound)


def _store_page(
    runtime: Runtime,
    item_id: int,
    snapshot: QueuedItem,
    canonical: str,
    page: Page,
    extraction: str,
    bound: FilteringBoundLogger,
) -> ItemResult | Stored:
    stored = _store(runtime, item_id, snapshot, canonical, page, extraction)
    if isinstance(stored, Stored):
        return stored
    # A consent wall, bot check or paywall notice served in place of the article: taken
    # as the text, it would make every later article of the site a "copy".
    failure = f"the page is the site's wall (the text and title of article {stored})"
    summary, extraction = _summary_instead(snapshot, failure, bound)
    if summary is not None:
        again = _store(runtime, item_id, snapshot, canonical, summary, extraction)
        if isinstance(again, Stored):
            return again
    with transaction(runtime.sessions) as session:
        return finish_item(session, item_id, "failed", error=failure)


def _store(
    runtime: Runtime,
    item_id: int,
    snapshot: QueuedItem,
    canonical: str,
    page: Page,
    extraction: str,
) -> Stored | int:
    """The article stored, with the item pointing at it; or, when the page is the site's
    wall (see `worker.pipeline.copies.site_wall`), the id of the article it repeats, with
    nothing written."""
    # Stored as the tracker reads it (worker.decide.tracker): a page past the bound is not
    # one article, and its whole text would weigh on every copy check and sync.
    text = bounded_text(page.text)
    signature = minhash_signature(text)
    bands = lsh_band_keys(signature)
    title = page.title or snapshot.title
    prepared = _prepared_view(runtime, title, text)
    fingerprint = text_fingerprint(text)
    with transaction(runtime.sessions) as session:
        duplicate_of = find_copy(session, canonical, page, fingerprint, signature, bands)
        if duplicate_of is not None and site_wall(session, duplicate_of, page, snapshot.title):
            return duplicate_of
        article = articles.NewArticle(
            canonical_url=canonical,
            url=snapshot.url,
            title=title,
            source=page.source or snapshot.feed_title or _host(snapshot.url),
            # A date in the future is a feed's mistake; left in, it would make the story's
            # report counts (worker.decide.surge) skip to that day and forget the present.
            published=_not_after(snapshot.published or page.published, runtime.clock()),
            text=text,
            extraction=extraction,
            content_hash=fingerprint,
            signature=signature_to_bytes(signature),
            duplicate_of=duplicate_of,
        )
        stored = articles.store(session, item_id, article, bands, prepared, runtime.clock())
        return Stored(item_id, stored)


def _prepared_view(runtime: Runtime, title: str | None, text: str) -> tuple[bytes, bytes] | None:
    """(fingerprint, bytes) of the article's term vector for its decision
    (worker.decide.prepared), computed here because storing processes run side by side
    and the deciding one is the service's serial stage; None when it cannot be computed
    (logged): the decider then computes its own, and the article is stored all the same."""
    config = runtime.trackers.config
    try:
        return view_fingerprint(title, text, config), encode_view(prepare_view(title, text, config))
    except Exception as exc:  # a bad vector must not cost the article its storage
        log.warning("item.view_not_prepared", error=f"{type(exc).__name__}: {exc}"[:300])
        return None


def _not_after(published: datetime | None, now: datetime) -> datetime | None:
    return min(published, now) if published is not None else None


@dataclass(frozen=True, slots=True)
class _Taken:
    snapshot: QueuedItem
    canonical: str  # the key its article will be stored under


def _take_up(runtime: Runtime, item_id: int) -> ItemResult | Stored | _Taken:
    """One more attempt at the item, counted and committed before the page is fetched (a
    page that kills its process still counts); or why it needs none: settled already,
    stored by an earlier run whose decision was lost, or a link already stored.

    No transaction around it (`autocommit`: on PostgreSQL two round trips, not five; each
    statement, the finish of an item that needs no run included, commits alone). On
    SQLite it is one transaction, so that finish cannot follow another run's store."""
    with autocommit(runtime.sessions) as session:
        snapshot = items.take_up(session, item_id, MAX_ITEM_ATTEMPTS)
        if isinstance(snapshot, Settled):
            return finish_settled(session, item_id, snapshot)
        if snapshot.article_id is not None:
            return Stored(item_id, snapshot.article_id)
        canonical = storage_key(
            canonicalize_url(snapshot.url)
            if snapshot.url
            else f"urn:storywatch:{snapshot.feed_id}:{snapshot.key}"
        )
        existing = article_by_url(session, canonical)
        if existing is not None:
            return finish_item(session, item_id, "duplicate", article_id=existing)
        return _Taken(snapshot, canonical)


def _obtain_text(
    runtime: Runtime, snapshot: QueuedItem, *, allow_fallback: bool, log: FilteringBoundLogger
) -> tuple[Page | None, str]:
    """(page, "page") from the article page, or (page, "summary") from the feed, or
    (None, reason) when neither gives text."""
    bound = log
    failure: str
    if snapshot.url:
        try:
            client = runtime.fetch_client()
            result = client.get(snapshot.url, accept="text/html,application/xhtml+xml")
            return extract_page(result.body, url=result.url, headers=result.headers), "page"
        except TransientFetchError as exc:
            if not allow_fallback:
                bound.warning("item.page_retry", error=str(exc), status_code=exc.status_code)
                raise
            failure = f"{type(exc).__name__}: {exc}"
        except (FetchError, ExtractionError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
    else:
        failure = "the item has no link"
    return _summary_instead(snapshot, failure, bound)


def _summary_instead(
    snapshot: QueuedItem, failure: str, bound: FilteringBoundLogger
) -> tuple[Page | None, str]:
    """(page, "summary") from the feed's summary, or (None, failure) when it is too short."""
    summary = (snapshot.summary or "").strip()
    if len(summary) >= MIN_SUMMARY_CHARS:
        bound.warning("item.summary_fallback", reason=failure)
        return Page(text=summary, title=snapshot.title), "summary"
    bound.warning("item.no_text", reason=failure)
    return None, failure[:2000]


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None
