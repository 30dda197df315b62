"""An item's decision, as rows: its run counted (`start_decision`), the item read with
its stored article and prepared view (`to_decide`), and the decision recorded
(`finish_decisions`). The item's earlier steps are `worker.store.items`'s. Each function
runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from worker.models import ItemOutcome, item_outcome
from worker.store.items import NOT_DURABLE, Settled, finish_update
from worker.store.schema import Article, Item, PreparedView, UTCDateTime
from worker.utc import utcnow

# Session.info keys: this transaction recorded a decision whose commit must wait for the
# disk; it recorded an unmatched one that turned the wait off (`finish_decisions`).
_MUST_LAST = "storywatch_decision_must_last"
_MAY_BE_LOST = "storywatch_decision_may_be_lost"


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item whose article is stored and waits for its decision: with the article, and
    the term vector the storing process prepared for it (`worker.store.views`), if any."""

    feed_id: str
    url: str | None
    # Loaded in the decision's session; `finish_decisions` writes its story and score with
    # a statement of its own and then expires it, so a later read loads the row again.
    article: Article
    view: tuple[bytes, bytes] | None  # (fingerprint, data)
    seen: datetime


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
        counted = counted.where(NOT_DURABLE.is_not(None))
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
        .where(Item.id == untried.c.id, NOT_DURABLE.is_not(None))
        .values(attempts=Item.attempts + 1)
        .returning(Item.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(counted))


# An item to decide, its article and the term vector prepared for it.
_DECIDING = (
    select(Item, Article, PreparedView.fingerprint, PreparedView.data)
    .outerjoin(Article, Article.id == Item.article_id)
    .outerjoin(PreparedView, PreparedView.article_id == Item.article_id)
)


def to_decide(session: Session, item_id: int, max_attempts: int) -> StoredItem | Settled:
    """The stored item to decide, with its article and prepared view (one statement); or
    why there is nothing to decide (finished already, never stored: "missing", or out of
    attempts: "failed", with the error to record).

    Holds the item's row (on PostgreSQL) until the decision commits: two deciders given
    the same item at once (a redelivery and the sweep's resend) decide it once, the
    second finding it settled, instead of both deciding behind the story's lock."""
    found = session.execute(_DECIDING.where(Item.id == item_id).with_for_update(of=Item)).first()
    if found is None:
        return Settled("missing")
    item, article, fingerprint, data = found
    return _waiting(item, article, fingerprint, data, max_attempts)


def to_decide_many(
    session: Session, item_ids: Sequence[int], max_attempts: int
) -> dict[int, StoredItem | Settled]:
    """`to_decide` for several items in one statement, without waiting: each found
    item's row is held until the commit, and an item another transaction holds (or that
    is gone) is not in the answer. For items decided together (on PostgreSQL: SKIP
    LOCKED; elsewhere nothing is held and only the database's write lock orders writers)."""
    if not item_ids:
        return {}
    found = session.execute(
        _DECIDING.where(Item.id.in_(item_ids)).with_for_update(of=Item, skip_locked=True)
    ).all()
    return {
        item.id: _waiting(item, article, fingerprint, data, max_attempts)
        for item, article, fingerprint, data in found
    }


def _waiting(
    item: Item,
    article: Article | None,
    fingerprint: bytes | None,
    data: bytes | None,
    max_attempts: int,
) -> StoredItem | Settled:
    if item.status != "new":
        return Settled(item_outcome(item.outcome or item.status))
    if article is None:
        return Settled("missing")
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
    view = (
        (bytes(fingerprint), bytes(data)) if fingerprint is not None and data is not None else None
    )
    return StoredItem(item.feed_id, item.url, article, view, item.created_at)


def undecided(session: Session, article_id: int) -> bool:
    """Whether an item that stored this article still waits for its decision."""
    waiting = session.scalar(
        select(Item.id).where(Item.article_id == article_id, Item.status == "new").limit(1)
    )
    return waiting is not None


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision to record (`finish_decisions`): the item's outcome, and its article's
    story and score when it matched."""

    item_id: int
    outcome: ItemOutcome
    article_id: int
    story_id: str | None = None
    score: float | None = None


def finish_decisions(session: Session, decided: Sequence[Decided]) -> None:
    """Record decisions: each item done with its outcome, its article's story and score
    when it matched, the article's prepared view dropped (the decision read it). One
    statement on PostgreSQL however many: the decider is the service's one serial stage,
    and each round trip to the database is time it waits.

    Durability (PostgreSQL): a commit holding only unmatched decisions (most of a real
    stream: nothing but their rows is written and nothing is sent) does not wait for the
    disk flush; lost with the database's crash, they are decided again, and a later
    durable commit makes it durable too (WAL is written in order). Any other decision in
    the same transaction (what a story learned, a development, its alert) makes the whole
    commit wait, even after unmatched ones turned the wait off."""
    if not decided:
        return
    if session.get_bind().dialect.name != "postgresql":
        for one in decided:
            session.execute(delete(PreparedView).where(PreparedView.article_id == one.article_id))
            if one.story_id is not None:
                session.execute(
                    update(Article)
                    .where(Article.id == one.article_id)
                    .values(story_id=one.story_id, score=one.score)
                    .execution_options(synchronize_session=False)
                )
            session.execute(finish_update(one.item_id, one.outcome, one.article_id, None))
        _written_by_statement(session, [d.article_id for d in decided])
        return
    synchronous: str | None = None  # leave the transaction's setting as it is
    if all(d.outcome == "unmatched" for d in decided) and not session.info.get(_MUST_LAST):
        synchronous = "off"
        session.info[_MAY_BE_LOST] = True
    elif any(d.outcome != "unmatched" for d in decided):
        session.info[_MUST_LAST] = True
        if session.info.get(_MAY_BE_LOST):
            synchronous = "on"
    session.flush()  # a text statement does not autoflush: rows added before come first
    session.execute(
        _FINISH_POSTGRES,
        {
            "item_ids": [d.item_id for d in decided],
            "outcomes": [d.outcome for d in decided],
            "article_ids": [d.article_id for d in decided],
            "story_ids": [d.story_id for d in decided],
            "scores": [d.score for d in decided],
            "now": utcnow(),
            "synchronous": synchronous,
        },
    )
    _written_by_statement(session, [d.article_id for d in decided])


# `finish_decisions` on PostgreSQL: one statement whatever the number of decisions (its
# rows are arrays, so its text is the same for every batch: built once, not per batch).
# `synchronous` sets synchronous_commit for this transaction, or keeps it (NULL).
_FINISH_POSTGRES = text(
    "WITH decided AS ("
    " SELECT * FROM unnest(CAST(:item_ids AS integer[]), CAST(:outcomes AS text[]),"
    " CAST(:article_ids AS integer[]), CAST(:story_ids AS text[]),"
    " CAST(:scores AS double precision[])) AS d(item_id, outcome, article_id, story_id, score)"
    "), dropped AS ("
    " DELETE FROM article_views WHERE article_id = ANY(CAST(:article_ids AS integer[]))"
    "), matched AS ("
    " UPDATE articles SET story_id = decided.story_id, score = decided.score FROM decided"
    " WHERE articles.id = decided.article_id AND decided.story_id IS NOT NULL"
    ") UPDATE items SET status = 'done', outcome = decided.outcome,"
    " article_id = decided.article_id, error = NULL,"
    " processed_at = CAST(:now AS timestamptz) FROM decided WHERE items.id = decided.item_id"
    " AND set_config('synchronous_commit',"
    " COALESCE(CAST(:synchronous AS text), current_setting('synchronous_commit')), true)"
    " IS NOT NULL"
).bindparams(bindparam("now", type_=UTCDateTime()))


def _written_by_statement(session: Session, article_ids: Sequence[int]) -> None:
    """Expire the loaded articles a statement just wrote (their story and score):
    a later read in the same transaction (a copy decided with its original asks for the
    original's story) then loads the row, not the object as it was read before."""
    for article_id in article_ids:
        loaded = session.identity_map.get(identity_key(Article, article_id))
        if loaded is not None:
            session.expire(loaded)
