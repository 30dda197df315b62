"""An item's run through the pipeline, as rows: taken up (one more attempt), its article
stored, then decided and finished with its outcome. Each function runs inside the
caller's transaction.

An item stays `new` until it is finished; one whose article is stored (`mark_stored`)
waits for `worker.pipeline.processing.decide_item`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Update, delete, func, select, update
from sqlalchemy.orm import Session

from worker.models import ItemOutcome, item_outcome
from worker.store.schema import Article, Feed, Item, PreparedView
from worker.utc import utcnow

# PostgreSQL: this transaction's commit does not wait for its disk flush (SET LOCAL
# synchronous_commit = off, as a function in a statement's WHERE: no round trip of its own).
_NOT_DURABLE = func.set_config("synchronous_commit", "off", True)
_DURABLE = func.set_config("synchronous_commit", "on", True)
# Session.info keys: this transaction recorded a decision whose commit must wait for the
# disk; it recorded an unmatched one that turned the wait off (`finish_decision`).
_MUST_LAST = "storywatch_decision_must_last"
_MAY_BE_LOST = "storywatch_decision_may_be_lost"


@dataclass(frozen=True, slots=True)
class QueuedItem:
    """What processing needs of an item, read when its run starts."""

    feed_id: str
    feed_title: str | None
    url: str | None
    title: str | None
    summary: str | None
    published: datetime | None
    key: str
    attempts: int  # this run included
    seen: datetime  # when a poll first saw the item
    article_id: int | None  # stored by an earlier run, not decided yet


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item whose article is stored and waits for its decision: with the article, and
    the term vector the storing process prepared for it (`worker.store.views`), if any."""

    feed_id: str
    url: str | None
    # Loaded in the decision's session; `finish_decision` writes its story and score with
    # a statement of its own, so this object keeps the values it was read with.
    article: Article
    view: tuple[bytes, bytes] | None  # (fingerprint, data)
    seen: datetime


@dataclass(frozen=True, slots=True)
class Settled:
    """The item needs no run: it is gone, already processed, or out of attempts."""

    outcome: ItemOutcome
    error: str | None = None
    article_id: int | None = None  # a stored item's article, kept when it fails


def take_up(session: Session, item_id: int, max_attempts: int) -> QueuedItem | Settled:
    """Count one more attempt at a `new` item and read it; or say why it needs no run.
    An item stored already is read without counting: its attempts are its decision
    runs' (`start_decision`).

    The count is one UPDATE whose conditions are those under which this answers a
    QueuedItem of an item not stored yet. On PostgreSQL it runs inside the read (a
    data-modifying CTE: one statement, meant to commit alone through
    `worker.store.engine.autocommit`, and not durably, as `start_decision`'s: a count lost
    with the database's crash costs nothing); elsewhere after it."""
    counting = (
        update(Item)
        .where(
            Item.id == item_id,
            Item.status == "new",
            Item.article_id.is_(None),
            Item.attempts < max_attempts,
        )
        .values(attempts=Item.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    # The read sees the row as it was before the count (one snapshot for the statement).
    read: Select[*tuple[Any, ...]] = (
        select(
            Item.feed_id,
            Feed.title,
            Item.url,
            Item.title,
            Item.summary,
            Item.published,
            Item.key,
            Item.attempts,
            Item.created_at,
            Item.article_id,
            Item.status,
            Item.outcome,
            Item.error,
        )
        .outerjoin(Feed, Feed.id == Item.feed_id)
        .where(Item.id == item_id)
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Referenced by nothing: rendered only when added.
        read = read.add_cte(counting.where(_NOT_DURABLE.is_not(None)).cte("counting"))
    row = session.execute(read).one_or_none()
    if row is None:
        return Settled("missing")
    taken = _taken(_Read(*row), max_attempts)
    if not postgres and isinstance(taken, QueuedItem) and taken.article_id is None:
        session.execute(counting)
    return taken


class _Read(NamedTuple):
    """An item's row as `take_up` reads it, before this run's attempt is counted."""

    feed_id: str
    feed_title: str | None
    url: str | None
    title: str | None
    summary: str | None
    published: datetime | None
    key: str
    attempts: int
    created_at: datetime
    article_id: int | None
    status: str
    outcome: str | None
    error: str | None


def _taken(read: _Read, max_attempts: int) -> QueuedItem | Settled:
    """`take_up`'s answer for the row it read (before the count)."""
    if read.status != "new":
        # Redelivered message (acks_late) or a sweep that raced the first run.
        return Settled(item_outcome(read.outcome or read.status))
    fresh = read.article_id is None  # not stored yet: this run is an attempt to store it
    if fresh and read.attempts >= max_attempts:
        # A poison item (one that crashes every run) must not be retried forever.
        error = f"too many attempts; last error: {read.error}" if read.error else None
        return Settled("failed", error or "too many attempts")
    return QueuedItem(
        feed_id=read.feed_id,
        feed_title=read.feed_title,
        url=read.url,
        title=read.title,
        summary=read.summary,
        published=read.published,
        key=read.key,
        attempts=read.attempts + 1 if fresh else read.attempts,
        seen=read.created_at,
        article_id=read.article_id,
    )


def mark_stored(session: Session, item_id: int, article_id: int, now: datetime) -> None:
    """The item's article is stored: it waits for its decision. Queued now, so the
    sweep gives the decision its own time before taking the item up again. Its attempts
    start again at 0: from here on they count decision runs (`start_decision`), so a
    store that took several runs leaves the decision all of its own."""
    session.execute(
        update(Item)
        .where(Item.id == item_id)
        .values(article_id=article_id, queued_at=now, attempts=0, error=None)
        .execution_options(synchronize_session=False)
    )


def start_decision(session: Session, item_id: int) -> int | None:
    """Count one more run of a stored, undecided item's decision, in a transaction of its
    own committed before the run. A decision that kills its process leaves nothing else
    behind, and the broker hands its message back (acks_late): counted here, it ends
    `failed` after its attempts instead of killing a deciding process for ever.

    Not durable on PostgreSQL (synchronous_commit off for this transaction alone): a
    count lost with the database's crash costs nothing, and the decider, which is the
    service's one serial stage, does not wait for a disk flush before every decision.

    Returns the item's runs counted so far, this one included (None: nothing to decide)."""
    counted = (
        update(Item)
        .where(Item.id == item_id, Item.status == "new", Item.article_id.is_not(None))
        .values(attempts=Item.attempts + 1)
        .returning(Item.attempts)
        .execution_options(synchronize_session=False)
    )
    if session.get_bind().dialect.name == "postgresql":
        counted = counted.where(_NOT_DURABLE.is_not(None))
    return session.scalar(counted)


def start_untried_decisions(session: Session, besides: int, limit: int) -> list[int]:
    """Up to `limit` other stored items whose decision no run has tried yet, oldest
    first, each counted as started (`start_decision`) in this one statement; PostgreSQL
    only (an empty list elsewhere). Items another transaction holds are skipped (SKIP
    LOCKED), not waited for.

    Only untried items: a decision that kills its process takes everything decided with
    it down too, and each of those then has a run counted; once tried, an item is decided
    alone by its own message, so an item that kills its process fails after its own runs
    and costs the others one run each, not all of theirs."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    untried = (
        select(Item.id)
        .where(
            Item.status == "new",
            Item.article_id.is_not(None),
            Item.attempts == 0,
            Item.id != besides,
        )
        .order_by(Item.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("untried")
    )
    counted = (
        update(Item)
        .where(Item.id == untried.c.id, _NOT_DURABLE.is_not(None))
        .values(attempts=Item.attempts + 1)
        .returning(Item.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(counted))


def to_decide(
    session: Session, item_id: int, max_attempts: int, *, wait: bool = True
) -> StoredItem | Settled | None:
    """The stored item to decide, with its article and prepared view (one statement); or
    why there is nothing to decide (finished already, never stored: "missing", or out of
    attempts: "failed", with the error to record).

    Holds the item's row (on PostgreSQL) until the decision commits: two deciders given
    the same item at once (a redelivery and the sweep's resend) decide it once, the
    second finding it settled, instead of both deciding behind the story's lock. Without
    `wait`, None when another transaction holds the row (deciding it)."""
    found = session.execute(
        select(Item, Article, PreparedView.fingerprint, PreparedView.data)
        .outerjoin(Article, Article.id == Item.article_id)
        .outerjoin(PreparedView, PreparedView.article_id == Item.article_id)
        .where(Item.id == item_id)
        .with_for_update(of=Item, skip_locked=not wait)
    ).first()
    if found is None and not wait:
        exists = session.scalar(select(Item.id).where(Item.id == item_id))
        return None if exists is not None else Settled("missing")
    if found is None:
        return Settled("missing")
    item, article, fingerprint, data = found
    if item.status == "new" and article is None:
        return Settled("missing")
    if item.status != "new":
        return Settled(item_outcome(item.outcome or item.status))
    if item.attempts > max_attempts:
        # Past its runs (`start_decision` counted each): a decision that fails, or kills
        # its process, on every run stops here.
        error = (
            f"too many attempts; last error: {item.error}"
            if item.error
            # No run recorded an error: each ended with its process (out of memory, a crash
            # in C, a kill), or was still retrying a passing error when the next began.
            else "too many attempts; no decision run finished with an answer or an error"
            " (its process died or stopped, or retried a passing error)"
        )
        return Settled("failed", error, item.article_id)
    view = (bytes(fingerprint), bytes(data)) if fingerprint is not None else None
    return StoredItem(item.feed_id, item.url, article, view, item.created_at)


def undecided(session: Session, article_id: int) -> bool:
    """Whether an item that stored this article still waits for its decision."""
    waiting = session.scalar(
        select(Item.id).where(Item.article_id == article_id, Item.status == "new").limit(1)
    )
    return waiting is not None


def finish(
    session: Session,
    item_id: int,
    outcome: ItemOutcome,
    article_id: int | None,
    error: str | None,
) -> None:
    """Record how the item's run ended (`failed` stays failed; every other outcome is done)."""
    session.execute(_finished(item_id, outcome, article_id, error))


def _finished(
    item_id: int, outcome: ItemOutcome, article_id: int | None, error: str | None
) -> Update:
    return (
        update(Item)
        .where(Item.id == item_id)
        .values(
            status="failed" if outcome == "failed" else "done",
            outcome=outcome,
            article_id=article_id,
            error=error,
            processed_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def finish_decision(
    session: Session,
    item_id: int,
    outcome: ItemOutcome,
    article_id: int,
    *,
    story_id: str | None = None,
    score: float | None = None,
) -> None:
    """Record a decision: the item done with its outcome, its article's story and score
    when it matched, the article's prepared view dropped (the decision read it). One
    statement on PostgreSQL: the decider is the service's one serial stage, and each
    round trip to the database is time it waits."""
    finished = _finished(item_id, outcome, article_id, None)
    dropped = delete(PreparedView).where(PreparedView.article_id == article_id)
    matched = (
        update(Article)
        .where(Article.id == article_id)
        .values(story_id=story_id, score=score)
        .execution_options(synchronize_session=False)
    )
    if session.get_bind().dialect.name == "postgresql":
        finished = finished.add_cte(dropped.cte("dropped"))
        if story_id is not None:
            finished = finished.add_cte(matched.cte("matched"))
        if outcome == "unmatched" and not session.info.get(_MUST_LAST):
            # Nothing but this row is written and nothing is sent: the commit need not
            # wait for the disk (most of a real stream). Lost with the database's crash,
            # the item is decided again; a later commit that is durable (WAL is written
            # in order) makes this one durable too.
            finished = finished.where(_NOT_DURABLE.is_not(None))
            session.info[_MAY_BE_LOST] = True
        elif outcome != "unmatched":
            # What a story learned, a development, its alert: durable. An unmatched
            # decision earlier in the same transaction (several decided together) turned
            # the wait off for the whole commit: turn it back on.
            session.info[_MUST_LAST] = True
            if session.info.get(_MAY_BE_LOST):
                finished = finished.where(_DURABLE.is_not(None))
        session.execute(finished)
        return
    session.execute(dropped)
    if story_id is not None:
        session.execute(matched)
    session.execute(finished)
