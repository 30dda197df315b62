"""Process one feed item: fetch and clean the page, drop copies, match, detect novelty,
and write the development, its alert and the alert's deliveries in one transaction.

The decision "is this new for story S" runs under a lock on story S (a row lock on
PostgreSQL, the database write lock on SQLite) after the tracker has caught up with every
fact committed before the lock was taken: two workers holding two copies of one
development therefore produce exactly one alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.exc import OperationalError
from structlog.typing import FilteringBoundLogger

from worker.articles.dedupe import (
    lsh_band_keys,
    minhash_signature,
    signature_to_bytes,
    text_fingerprint,
)
from worker.articles.extract import extract_page
from worker.articles.urls import canonicalize_url
from worker.errors import ExtractionError, FetchError, TransientFetchError
from worker.models import Article, Decision, ItemOutcome, Match, Page
from worker.observe import metrics
from worker.observe.logs import get_logger
from worker.pipeline.copies import article_by_url, find_copy, site_wall, storage_key
from worker.pipeline.corroborate import FollowUps, follow_ups, record_copy, record_repeat
from worker.pipeline.outbox import record_development
from worker.pipeline.runtime import Runtime
from worker.pipeline.tracking import TrackerCache
from worker.store import articles, items
from worker.store.articles import ArticleRow
from worker.store.engine import DbSession, transaction
from worker.store.items import QueuedItem, Settled
from worker.text.terms import bounded_text
from worker.utc import as_utc

log = get_logger(__name__)

MAX_ITEM_ATTEMPTS = 6
MAX_LOCK_ROUNDS = 4
MIN_SUMMARY_CHARS = 40  # a summary shorter than this carries no fact worth deciding on


@dataclass(frozen=True, slots=True)
class ItemResult:
    item_id: int
    outcome: ItemOutcome
    story_id: str | None = None
    alert_id: str | None = None


def process_item(runtime: Runtime, item_id: int, *, page_attempts: int = 3) -> ItemResult:
    """Take one item from `new` to `done` (or `failed`), idempotently.

    A transient page failure raises TransientFetchError during the first `page_attempts`
    attempts, so the caller can retry later; after that, and at once for permanent
    failures, the feed's summary stands in for the page.
    """
    snapshot = _take_up(runtime, item_id)
    if isinstance(snapshot, ItemResult):
        return snapshot
    allow_fallback = snapshot.attempts >= page_attempts
    bound = log.bind(item_id=item_id, feed_id=snapshot.feed_id, url=snapshot.url)
    canonical = storage_key(
        canonicalize_url(snapshot.url)
        if snapshot.url
        else f"urn:storywatch:{snapshot.feed_id}:{snapshot.key}"
    )
    with transaction(runtime.sessions) as session:
        existing = article_by_url(session, canonical)
        if existing is not None:
            return _finish(session, item_id, "duplicate", article_id=existing)

    with metrics.observe_stage("fetch_extract"):
        page, extraction = _obtain_text(runtime, snapshot, allow_fallback=allow_fallback, log=bound)
    if page is None:
        with transaction(runtime.sessions) as session:
            return _finish(session, item_id, "failed", error=extraction)

    # The tracker learns in memory before the commit: hold its lock until the commit is
    # done, and forget what it learned if anything (the commit included) fails.
    with runtime.trackers.lock:
        try:
            stored = _store_and_decide(
                runtime, item_id, snapshot, canonical, page, extraction, bound
            )
            if not isinstance(stored, int):
                return stored
            # A consent wall, bot check or paywall notice served in place of the article:
            # taken as the text, it would make every later article of the site a "copy".
            failure = f"the page is the site's wall (the text and title of article {stored})"
            summary, extraction = _summary_instead(snapshot, failure, bound)
            if summary is not None:
                again = _store_and_decide(
                    runtime, item_id, snapshot, canonical, summary, extraction, bound
                )
                if not isinstance(again, int):
                    return again
            with transaction(runtime.sessions) as session:
                return _finish(session, item_id, "failed", error=failure)
        except BaseException:
            runtime.trackers.invalidate()
            raise


def _store_and_decide(
    runtime: Runtime,
    item_id: int,
    snapshot: QueuedItem,
    canonical: str,
    page: Page,
    extraction: str,
    bound: FilteringBoundLogger,
) -> ItemResult | int:
    """The item stored and decided; or, when the page is the site's wall (see
    `worker.pipeline.copies.site_wall`), the id of the article it repeats, with nothing
    written."""
    # Stored as the tracker reads it (worker.decide.tracker): a page past the bound is not
    # one article, and its whole text would weigh on every copy check and sync.
    text = bounded_text(page.text)
    signature = minhash_signature(text)
    bands = lsh_band_keys(signature)
    with transaction(runtime.sessions) as session:
        duplicate_of = find_copy(session, canonical, page, text, signature, bands)
        if duplicate_of is not None and site_wall(session, duplicate_of, page, snapshot.title):
            return duplicate_of
        row = articles.add(
            session,
            canonical_url=canonical,
            url=snapshot.url,
            title=page.title or snapshot.title,
            source=page.source or snapshot.feed_title or _host(snapshot.url),
            # A date in the future is a feed's mistake; left in, it would make the story's
            # report counts (worker.decide.surge) skip to that day and forget the present.
            published=_not_after(snapshot.published or page.published, runtime.clock()),
            text=text,
            extraction=extraction,
            content_hash=text_fingerprint(text),
            signature=signature_to_bytes(signature),
            duplicate_of=duplicate_of,
        )
        if duplicate_of is not None:
            bound.info("item.duplicate", duplicate_of=duplicate_of)
            original = articles.get(session, duplicate_of)
            if original is not None and original.canonical_url != canonical:
                # another outlet, same text
                record_copy(session, row, duplicate_of, _follow_ups(runtime))
            if original is not None and original.story_id is not None:
                _count_report(runtime, session, original.story_id, row)
            return _finish(session, item_id, "duplicate", article_id=row.id)
        articles.add_bands(session, row.id, bands)
        article = Article(
            id=str(row.id),
            title=row.title,
            text=text,
            url=snapshot.url,
            source=row.source,
            published=row.published,
            # An undated report is dated by the poll that first saw it (Article.seen).
            seen=as_utc(snapshot.seen),
        )
        with metrics.observe_stage("decide"):
            return _decide_and_record(runtime, session, row, article, item_id, bound)


def _not_after(published: datetime | None, now: datetime) -> datetime | None:
    return min(published, now) if published is not None else None


def _count_report(runtime: Runtime, session: DbSession, story_id: str, row: ArticleRow) -> None:
    """A copy is never decided, but it is one more report of its original's story: the
    wave of syndicated copies is what a surge (worker.decide.surge) counts. Under the story's
    lock, so report ids follow the order in which trackers count them."""
    with runtime.trackers.lock:
        if not runtime.trackers.lock_story(session, story_id):
            return  # the story was removed from the corpus
        runtime.trackers.count_report(session, story_id, row.id, row.published)


def _take_up(runtime: Runtime, item_id: int) -> QueuedItem | ItemResult:
    with transaction(runtime.sessions) as session:
        snapshot = items.take_up(session, item_id, MAX_ITEM_ATTEMPTS)
        if not isinstance(snapshot, Settled):
            return snapshot
        if snapshot.error is None:
            return ItemResult(item_id, snapshot.outcome)  # counted when it settled
        return _finish(session, item_id, snapshot.outcome, error=snapshot.error)


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


def _decide_and_record(
    runtime: Runtime,
    session: DbSession,
    row: ArticleRow,
    article: Article,
    item_id: int,
    bound: FilteringBoundLogger,
) -> ItemResult:
    trackers = runtime.trackers
    with trackers.lock:
        # A first look without a lock, to know which story to lock (most articles match
        # none); then the decision itself, under that story's lock.
        first = trackers.current(session).match(article)
        if first is None:
            bound.info("item.unmatched")
            return _finish(session, item_id, "unmatched", article_id=row.id)
        decision = _decide_under_lock(session, trackers, article, first)
        if decision.match is None:
            return _finish(session, item_id, "unmatched", article_id=row.id)
        trackers.learn(session, article, decision, row.id)
    row.story_id, row.score = decision.match.story_id, decision.match.score
    story = trackers.story(decision.match.story_id)
    if not decision.new_development:
        repeated = (
            record_repeat(
                session, row, decision.match.story_id, decision.repeats, _follow_ups(runtime)
            )
            if decision.repeats
            else None
        )
        bound.info(
            "item.rehash",
            story_id=decision.match.story_id,
            score=round(decision.match.score, 3),
            repeats_development=repeated,
            new_facts_repeated=bool(decision.novelty and decision.novelty.is_new),
        )
        return _finish(
            session, item_id, "rehash", article_id=row.id, story_id=decision.match.story_id
        )
    alert = record_development(runtime, session, row, decision, story)
    bound.info(
        "item.development",
        story_id=decision.match.story_id,
        alert_id=alert,
        score=round(decision.match.score, 3),
        new_facts=len(decision.novelty.new_facts) if decision.novelty else 0,
    )
    return _finish(
        session,
        item_id,
        "development",
        article_id=row.id,
        story_id=decision.match.story_id,
        alert=alert,
    )


def _decide_under_lock(
    session: DbSession, trackers: TrackerCache, article: Article, first: Match
) -> Decision:
    """Decide while holding the lock of the story the first look matched.

    1. Lock the matched story's row, catch the tracker up with every fact committed before
       the lock, and decide.
    2. Facts learned meanwhile may move the match to another story: then lock that one too
       and repeat. Locks are only added, so this ends; a story missing from the database
       (rebuilt under us) makes the tracker reload.
    """
    locked: set[str] = set()
    story_id: str | None = first.story_id
    for _ in range(MAX_LOCK_ROUNDS):
        assert story_id is not None
        if not trackers.lock_story(session, story_id):
            trackers.invalidate()
        else:
            locked.add(story_id)
        decision = trackers.current(session).decide(article)
        story_id = decision.story_id
        if story_id is None or story_id in locked:
            return decision
    raise OperationalError("deciding under story locks", None, RuntimeError("no stable story"))


def _finish(
    session: DbSession,
    item_id: int,
    outcome: ItemOutcome,
    *,
    article_id: int | None = None,
    story_id: str | None = None,
    alert: str | None = None,
    error: str | None = None,
) -> ItemResult:
    items.finish(session, item_id, outcome, article_id, error)
    # Counted here, the last step before commit, so a redelivered item is not counted twice.
    metrics.count_item(outcome)
    if story_id is not None:
        metrics.count_match(story_id)
        if outcome == "development":
            metrics.count_development(story_id)
    return ItemResult(item_id, outcome, story_id, alert)


def _follow_ups(runtime: Runtime) -> FollowUps:
    return follow_ups(runtime.settings.destinations, runtime.clock())


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None
