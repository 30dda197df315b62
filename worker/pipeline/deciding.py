"""Decide a stored item (the second step; worker.pipeline.processing stores it): a copy
counts as one more report of its original's story; any other article is matched and, when
it matches, judged new or not, and the development, its alert and the alert's deliveries
are written in one transaction.

Deciding needs the story tracker and its locks, so it is its own task and may run in one
process while pages are fetched in others: two deciding processes each spend the time
to learn what the other learned, and wait for each other's story locks.

The decision "is this new for story S" runs under a lock on story S (a row lock on
PostgreSQL, the database write lock on SQLite) after the tracker has caught up with every
fact committed before the lock was taken: two workers holding two copies of one
development therefore produce exactly one alert.

On PostgreSQL a decider with a backlog decides several stored items in one transaction
(`decide_ready`), in order, each as it would be decided alone after the one before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy.exc import OperationalError
from structlog.typing import FilteringBoundLogger

from worker.decide.prepared import decode_view, view_fingerprint
from worker.decide.tracker import Tracker, TrackerConfig
from worker.errors import OriginalUndecided, StoryBusy
from worker.models import Article, Decision, ItemOutcome, Match
from worker.observe import metrics
from worker.observe.logs import get_logger
from worker.pipeline.corroborate import FollowUps, follow_ups, record_copy, record_repeat
from worker.pipeline.outbox import record_development
from worker.pipeline.results import MAX_ITEM_ATTEMPTS, ItemResult, counted, finish_settled
from worker.pipeline.runtime import Runtime
from worker.pipeline.tracking import TrackerCache
from worker.store import articles, decisions
from worker.store.articles import ArticleRow
from worker.store.decisions import StoredItem
from worker.store.engine import DbSession, autocommit, transaction
from worker.store.items import Settled
from worker.utc import as_utc

log = get_logger(__name__)

MAX_LOCK_ROUNDS = 4
# Items decided in one transaction at most (`decide_ready`): a burst's first alert waits
# for the others' decisions too, about 25 ms each.
DECIDE_TOGETHER = 16


def decide_item(runtime: Runtime, item_id: int, *, new_run: bool = True) -> ItemResult:
    """Decide a stored item, idempotently (see the module's docstring). Raises
    OriginalUndecided for a copy whose original waits for its own decision.

    A `new_run` counts one attempt first, committed on its own (`decisions.start_decision`);
    a retry of the same run after a passing error (the database, a lock) is not one."""
    if new_run:
        _count_run(runtime, item_id)
    [result] = _decide_together(runtime, [item_id])
    return result


def decide_ready(runtime: Runtime, item_id: int, *, new_run: bool = True) -> list[ItemResult]:
    """Decide a stored item as `decide_item` does and, on PostgreSQL, on the item's first
    run, up to DECIDE_TOGETHER - 1 other stored items no run has tried yet, in the same
    transaction; the item's result comes first, the others' follow (their alerts need
    sending too).

    Why together: a decision is about 25 ms of the tracker's work and ten round trips to
    the database, each a wait while the storing processes keep both cores busy; decided
    together, items share the transaction, the story locks and the catching up, the
    others' rows are read in one statement and every decision's end written in one, so an
    unmatched item costs no round trip of its own and a matched one the writes of what
    its story learned. The others' own messages find them decided (remembered here, so
    without a query).

    What can go wrong stays bounded: anything failing among them rolls the lot back and
    the item is decided alone, the others left to their own messages; only first runs
    take others along, so an item that kills its process costs each item decided with it
    one run, never all of them. The others never wait for a lock (another decider's item
    or story): the batch ends before the first one it would wait for."""
    remembered = runtime.decided.get(item_id)
    if remembered is not None:
        return [remembered]
    runs = _count_run(runtime, item_id) if new_run else None
    others: list[int] = []
    if runs == 1:
        with autocommit(runtime.sessions) as session:
            others = decisions.start_untried_decisions(session, item_id, DECIDE_TOGETHER - 1)
    if not others:
        return [decide_item(runtime, item_id, new_run=False)]
    try:
        results = _decide_together(runtime, [item_id, *others])
    except OriginalUndecided:
        raise  # the item's own (decided first, before any other): its retry waits
    except Exception as exc:
        log.warning(
            "item.decided_alone",
            item_id=item_id,
            others=len(others),
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        return [decide_item(runtime, item_id, new_run=False)]
    # Their alerts are sent with this message's: their own messages send none again.
    runtime.decided.remember(replace(result, alert_id=None) for result in results[1:])
    return results


@dataclass
class _Together:
    """What items decided in one transaction share besides it: the others' rows, read in
    one statement when the first is decided, and every decision's last write, made in one
    statement before the commit (or before a copy asks whether its original is decided)."""

    others: dict[int, StoredItem | Settled] = field(default_factory=dict)
    decided: list[decisions.Decided] = field(default_factory=list)

    def record(self, session: DbSession) -> None:
        decisions.finish_decisions(session, self.decided)
        self.decided.clear()


def _decide_together(runtime: Runtime, item_ids: list[int]) -> list[ItemResult]:
    """Decide the items in order in one transaction. The first is decided as
    `decide_item` decides (its OriginalUndecided raised); each other is left to its own
    message when another transaction holds it, or when it is a copy whose original is
    undecided, and the batch ends at the first story lock another transaction holds."""
    results: list[ItemResult] = []
    together = _Together()
    # The tracker learns in memory before the commit: hold its lock until the commit is
    # done, and forget what it learned if anything (the commit included) fails.
    with runtime.trackers.lock:
        try:
            with transaction(runtime.sessions) as session:
                for position, item_id in enumerate(item_ids):
                    if position == 1:
                        runtime.trackers.stop_waiting(session)
                        together.others = decisions.to_decide_many(
                            session, item_ids[1:], MAX_ITEM_ATTEMPTS
                        )
                    try:
                        result = _decide_in(
                            runtime, session, item_id, together, first=position == 0
                        )
                    except OriginalUndecided:
                        if position == 0:
                            raise
                        continue
                    except StoryBusy as busy:
                        # Raised before anything of this item was written. The batch ends
                        # here rather than going on: a later report of the same story
                        # decided before this one would change what each is judged against.
                        log.info("decide.batch_ended", item_id=item_id, reason=str(busy))
                        break
                    if result is not None:
                        results.append(result)
                together.record(session)
        except BaseException:
            runtime.trackers.invalidate()
            raise
    metrics.count_decided_together(len(results))
    return results


def _decide_in(
    runtime: Runtime, session: DbSession, item_id: int, together: _Together, *, first: bool
) -> ItemResult | None:
    """The item's decision in the caller's transaction, its last write left to
    `together`. The first item is read here (waiting for its row); the others were read
    together, and one another transaction held is not there (None)."""
    if first:
        waiting: StoredItem | Settled | None = decisions.to_decide(
            session, item_id, MAX_ITEM_ATTEMPTS
        )
    else:
        waiting = together.others.get(item_id)
    if waiting is None:
        return None
    if isinstance(waiting, Settled):
        return finish_settled(session, item_id, waiting)
    row = waiting.article
    bound = log.bind(item_id=item_id, feed_id=waiting.feed_id, url=waiting.url)
    if row.duplicate_of is not None:
        # It asks whether its original is decided: an earlier decision of this batch
        # must be written first.
        together.record(session)
        return _decide_copy(runtime, session, item_id, row, bound, together)
    article = Article(
        id=str(row.id),
        title=row.title,
        text=row.text,
        url=row.url,
        source=row.source,
        published=row.published,
        # An undated report is dated by the poll that first saw it (Article.seen).
        seen=as_utc(waiting.seen),
    )
    with metrics.observe_stage("decide"):
        return _decide_and_record(runtime, session, waiting, article, item_id, bound, together)


def _count_run(runtime: Runtime, item_id: int) -> int | None:
    """Count the run's attempt (`decisions.start_decision`), trying twice: a failure here is
    retried by Celery as the same run (not counted again), so a pooled connection that
    died since its last use (worker.store.engine) must not cost the count. The pool is
    dropped with that failure, and the second try runs on a new connection."""
    try:
        with autocommit(runtime.sessions) as session:
            return decisions.start_decision(session, item_id)
    except OperationalError as exc:
        log.warning("item.count_retried", item_id=item_id, error=f"{type(exc).__name__}: {exc}")
        with autocommit(runtime.sessions) as session:
            return decisions.start_decision(session, item_id)


def _decide_copy(
    runtime: Runtime,
    session: DbSession,
    item_id: int,
    row: ArticleRow,
    bound: FilteringBoundLogger,
    together: _Together,
) -> ItemResult:
    assert row.duplicate_of is not None
    original = articles.get(session, row.duplicate_of)
    if (
        original is not None
        and original.story_id is None
        and decisions.undecided(session, original.id)
    ):
        raise OriginalUndecided(f"article {original.id}, which article {row.id} copies")
    # A copy is never decided, but it is one more report of its original's story: the
    # wave of syndicated copies is what a surge (worker.decide.surge) counts. Under the
    # story's lock, so report ids follow the order in which trackers count them; taken
    # before anything is written (StoryBusy leaves a copy decided together untouched).
    story_id = original.story_id if original is not None else None
    if story_id is not None and not runtime.trackers.lock_story(session, story_id):
        story_id = None  # the story was removed from the corpus
    bound.info("item.duplicate", duplicate_of=row.duplicate_of)
    if original is not None and original.canonical_url != row.canonical_url:
        # another outlet, same text
        record_copy(session, row, row.duplicate_of, _follow_ups(runtime))
    if story_id is not None:
        runtime.trackers.count_report(session, story_id, row.id, row.published)
    return _finish(together, item_id, "duplicate", row.id)


def _decide_and_record(
    runtime: Runtime,
    session: DbSession,
    waiting: StoredItem,
    article: Article,
    item_id: int,
    bound: FilteringBoundLogger,
    together: _Together,
) -> ItemResult:
    trackers = runtime.trackers
    row = waiting.article
    with trackers.lock:
        tracker = trackers.current(session)
        _prime(tracker, trackers.config, article, waiting.view, bound)
        # A first look without a lock, to know which story to lock (most articles match
        # none); then the decision itself, under that story's lock.
        first = tracker.match(article)
        if first is None:
            bound.info("item.unmatched")
            return _finish(together, item_id, "unmatched", row.id)
        decision = _decide_under_lock(session, trackers, article, first)
        if decision.match is None:
            return _finish(together, item_id, "unmatched", row.id)
        trackers.learn(session, article, decision, row.id)
    story_id, score = decision.match.story_id, decision.match.score
    story = trackers.story(story_id)
    if not decision.new_development:
        repeated = (
            record_repeat(session, row, story_id, decision.repeats, _follow_ups(runtime))
            if decision.repeats
            else None
        )
        bound.info(
            "item.rehash",
            story_id=story_id,
            score=round(score, 3),
            repeats_development=repeated,
            new_facts_repeated=bool(decision.novelty and decision.novelty.is_new),
        )
        return _finish(together, item_id, "rehash", row.id, story_id=story_id, score=score)
    alert = record_development(runtime, session, row, decision, story)
    bound.info(
        "item.development",
        story_id=story_id,
        alert_id=alert,
        score=round(score, 3),
        new_facts=len(decision.novelty.new_facts) if decision.novelty else 0,
    )
    return _finish(
        together, item_id, "development", row.id, story_id=story_id, score=score, alert=alert
    )


def _finish(
    together: _Together,
    item_id: int,
    outcome: ItemOutcome,
    article_id: int,
    *,
    story_id: str | None = None,
    score: float | None = None,
    alert: str | None = None,
) -> ItemResult:
    """The decision's last write (`decisions.finish_decisions`, made with the others decided
    together), counted as `finish_item` counts an item's end."""
    together.decided.append(decisions.Decided(item_id, outcome, article_id, story_id, score))
    return counted(item_id, outcome, story_id, alert)


def _prime(
    tracker: Tracker,
    config: TrackerConfig,
    article: Article,
    prepared: tuple[bytes, bytes] | None,
    bound: FilteringBoundLogger,
) -> None:
    """Give the tracker the article's term vector the storing process prepared (read
    with the item; `decisions.finish_decisions` drops it), when it was computed from this
    article with these knobs and code; otherwise the tracker computes its own."""
    if prepared is None:
        return
    fingerprint, data = prepared
    if fingerprint != view_fingerprint(article.title, article.text, config):
        return  # another article, or other knobs or code (a rolling upgrade): not ours
    try:
        view = decode_view(data)
    except (ValueError, KeyError, TypeError) as exc:
        bound.warning("item.prepared_view_unreadable", error=f"{type(exc).__name__}: {exc}")
        return
    tracker.prime(article, view)


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


def _follow_ups(runtime: Runtime) -> FollowUps:
    return follow_ups(runtime.settings.destinations, runtime.clock())
