"""The storing step's own statements (worker.store.articles, worker.store.items) keep their
meaning on both databases: an attempt is counted as the item is read (or not, with the
reason), every copy candidate comes back in one statement, in the order copy detection
asks (URLs, same text, shared bands), and a stored article is written with its bands,
its prepared view and its item in one step."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from worker.store import articles, decisions, items
from worker.store.engine import autocommit, make_engine, make_sessions, migrate, transaction
from worker.store.schema import Article, ArticleBand, Feed, Item, PreparedView

MOMENT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def _new(url: str, fingerprint: str, *, duplicate_of: int | None = None) -> articles.NewArticle:
    return articles.NewArticle(
        canonical_url=url,
        url=url,
        title="A title",
        source="example.org",
        published=MOMENT,
        text="The text of the article.",
        extraction="page",
        content_hash=fingerprint,
        signature=b"\x01\x02",
        duplicate_of=duplicate_of,
    )


def _storing_rows(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    sessions = make_sessions(engine)
    with transaction(sessions) as session:
        session.add(Feed(id="f", url="https://example.org/rss", title="Example"))
        session.add_all(
            [
                Item(feed_id="f", key=f"guid:{n}", status="new", attempts=2, error="earlier")
                for n in range(4)
            ]
        )
    with transaction(sessions) as session:
        item_ids = list(session.scalars(select(Item.id).order_by(Item.id)))
        session.add(Item(feed_id="f", key="spent", status="new", attempts=6, error="boom"))
        session.add(Item(feed_id="f", key="done", status="done", outcome="rehash"))
    with autocommit(sessions) as session:  # as the storing step takes an item up
        taken = items.take_up(session, item_ids[0], 6)
        assert isinstance(taken, items.QueuedItem)
        assert (taken.feed_title, taken.attempts, taken.article_id) == ("Example", 3, None)
        spent = items.take_up(session, item_ids[-1] + 1, 6)
        assert spent == items.Settled("failed", "too many attempts; last error: boom")
        assert items.take_up(session, item_ids[-1] + 2, 6) == items.Settled("rehash")
        assert items.take_up(session, 10_000, 6) == items.Settled("missing")
    with transaction(sessions) as session:
        counts = {key: n for key, n in session.execute(select(Item.key, Item.attempts))}
        assert (counts["guid:0"], counts["guid:1"], counts["spent"]) == (3, 2, 6)
    with transaction(sessions) as session:
        first = articles.store(
            session,
            item_ids[0],
            _new("https://a/1", "h1"),
            ["b2", "b1", "b2"],
            (b"fp", b"{}"),
            MOMENT,
        )
        second = articles.store(
            session, item_ids[1], _new("https://a/2", "h2"), ["b1", "b3"], None, MOMENT
        )
        copy = articles.store(
            session,
            item_ids[2],
            _new("https://a/3", "h1", duplicate_of=first),
            ["b1"],
            (b"fp", b"{}"),
            MOMENT,
        )
    with transaction(sessions) as session:
        stored = session.get(Item, item_ids[0])
        assert stored is not None and stored.article_id == first
        assert (stored.attempts, stored.error, stored.queued_at) == (0, None, MOMENT)
        assert stored.status == "new"  # it waits for its decision
        row = session.get(Article, first)
        assert row is not None and (row.published, row.signature) == (MOMENT, b"\x01\x02")
        assert row.created_at is not None
        bands = session.execute(
            select(ArticleBand.article_id, ArticleBand.band).order_by(
                ArticleBand.article_id, ArticleBand.band
            )
        ).all()
        # a copy gets no bands and no view: copies of it are found through its original
        assert [tuple(b) for b in bands] == [
            (first, "b1"),
            (first, "b2"),
            (second, "b1"),
            (second, "b3"),
        ]
        views = session.execute(select(PreparedView.article_id, PreparedView.data)).all()
        assert [tuple(v) for v in views] == [(first, b"{}")]
        again = items.take_up(session, item_ids[0], 6)  # stored: its decision counts now
        assert isinstance(again, items.QueuedItem) and again.article_id == first
        assert again.attempts == 0
        copied = session.get(Article, copy)
        assert copied is not None and copied.duplicate_of == first

        urls = ["https://a/3", "https://a/2"]
        found = articles.copy_candidates(session, urls, "h1", ["b3", "b1", "missing"])
        same_text = articles.same_text_step(urls)
        assert [(c.step, c.id) for c in found] == [
            (0, copy),
            (1, second),
            (same_text, first),  # the first article with the text, not its copy
            (same_text + 1, first),
            (same_text + 1, second),
        ]
        assert [c.signature for c in found] == [None, None, None, b"\x01\x02", b"\x01\x02"]
        assert articles.copy_candidates(session, ["https://none"], "none", []) == []
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        articles.store(session, item_ids[3], _new("https://a/1", "h9"), [], None, MOMENT)
    engine.dispose()


def test_storing_rows_on_sqlite(tmp_path: Path) -> None:
    _storing_rows(f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.mark.postgres
def test_storing_rows_on_postgres(postgres_url: str) -> None:
    _storing_rows(postgres_url)


@pytest.mark.postgres
def test_only_commits_whose_loss_is_redone_skip_the_disk_flush(postgres_url: str) -> None:
    """On PostgreSQL a stored article's transaction and an unmatched decision's commit
    without waiting for the disk (lost with a crash, each is simply redone); a decision
    that matched a story, whose alerts and follow-ups are sent, still waits."""
    engine = make_engine(postgres_url)
    migrate(engine)
    sessions = make_sessions(engine)

    def flushed(session: Session) -> str:
        return str(session.execute(text("show synchronous_commit")).scalar_one())

    with transaction(sessions) as session:
        session.add(Feed(id="f", url="https://example.org/rss"))
        session.add_all([Item(feed_id="f", key=f"k{n}", status="new") for n in range(11)])
    with transaction(sessions) as session:
        item_ids = list(session.scalars(select(Item.id).order_by(Item.id)))
    stored = []
    for item_id in item_ids:
        with transaction(sessions) as session:
            assert flushed(session) == "on"
            new = _new(f"https://a/{item_id}", f"h{item_id}")
            view = (b"fingerprint", b"{}")  # dropped by the decision
            stored.append(articles.store(session, item_id, new, [], view, MOMENT))
            assert flushed(session) == "off"
    with transaction(sessions) as session:
        decisions.finish_decisions(
            session, [decisions.Decided(item_ids[0], "unmatched", stored[0])]
        )
        assert flushed(session) == "off"
    for outcome, n in (("rehash", 1), ("development", 2)):
        with transaction(sessions) as session:
            decisions.finish_decisions(
                session, [decisions.Decided(item_ids[n], outcome, stored[n], story_id="s")]
            )
            assert flushed(session) == "on"
    # Decided together (worker.pipeline.deciding.decide_ready): one decision that must
    # last makes the whole commit wait, before or after an unmatched one.
    with transaction(sessions) as session:
        decisions.finish_decisions(
            session, [decisions.Decided(item_ids[3], "unmatched", stored[3])]
        )
        assert flushed(session) == "off"
        decisions.finish_decisions(
            session, [decisions.Decided(item_ids[4], "development", stored[4], story_id="s")]
        )
        assert flushed(session) == "on"
    with transaction(sessions) as session:
        decisions.finish_decisions(
            session, [decisions.Decided(item_ids[5], "rehash", stored[5], story_id="s")]
        )
        decisions.finish_decisions(
            session, [decisions.Decided(item_ids[6], "unmatched", stored[6])]
        )
        assert flushed(session) == "on"
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(PreparedView)) == 4
    # Several in one statement: unmatched alone skip the flush, one that must last does not.
    with transaction(sessions) as session:
        decisions.finish_decisions(
            session,
            [decisions.Decided(item_ids[n], "unmatched", stored[n]) for n in (7, 8)],
        )
        assert flushed(session) == "off"
    with transaction(sessions) as session:
        decisions.finish_decisions(
            session,
            [
                decisions.Decided(item_ids[9], "unmatched", stored[9]),
                decisions.Decided(item_ids[10], "rehash", stored[10], story_id="s", score=0.25),
            ],
        )
        assert flushed(session) == "on"
    with transaction(sessions) as session:
        outcomes = session.execute(select(Item.outcome).order_by(Item.id)).scalars().all()
        assert outcomes == [
            *("unmatched", "rehash", "development"),
            *("unmatched", "development", "rehash", "unmatched"),
            *("unmatched", "unmatched", "unmatched", "rehash"),
        ]
        matched = session.execute(
            select(Article.id, Article.story_id, Article.score).where(Article.id.in_(stored[9:]))
        ).all()
        assert sorted(matched) == [(stored[9], None, None), (stored[10], "s", 0.25)]
        assert session.scalar(select(func.count()).select_from(PreparedView)) == 0
    engine.dispose()
