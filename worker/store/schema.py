"""Tables: feeds and their validators, items and articles, stories and their known facts,
developments, alerts and their deliveries (the outbox).

Every side effect the pipeline makes is idempotent because of the unique constraints here:
one item per (feed, key), one article per canonical URL, one development per article,
one alert per development (its id is deterministic), one delivery per (alert, destination).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from worker.utc import as_utc, utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return as_utc(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    poll_every_seconds: Mapped[int] = mapped_column(Integer, default=900)
    enabled: Mapped[bool] = mapped_column(default=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    # The feed's own <ttl> or sy:updatePeriod, kept from the last parse so that polls
    # answered 304 or with unchanged bytes keep honouring it.
    ttl_seconds: Mapped[int | None]
    # Where a permanent redirect (301, 308) sent the feed: polled instead of `url` until
    # the configured URL changes (RFC 9110 §15.4.2: "future references ... should use").
    moved_to: Mapped[str | None] = mapped_column(Text)
    # Why polling stopped (410 Gone, 404 on several polls in a row); None while it runs.
    # A new URL in feeds.toml, or `storywatch feeds resume`, starts it again.
    stopped: Mapped[str | None] = mapped_column(Text)
    not_found_streak: Mapped[int] = mapped_column(default=0, server_default="0")
    next_check_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_checked_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    error_count: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    items_last_poll: Mapped[int] = mapped_column(default=0)
    items_total: Mapped[int] = mapped_column(default=0)
    # Items recorded as held (worker.store.feeds): nonzero, the next checks release them
    # instead of fetching. Kept here so a check of any other feed costs no items query.
    held_items: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "config" (feeds.toml) or "desk" (added on the web desk or by OPML import): only
    # config feeds are disabled when they leave feeds.toml.
    origin: Mapped[str] = mapped_column(String(16), default="config", server_default="config")


class Item(Base):
    """One feed entry, written when first seen and processed by `process_item`."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("feed_id", "key", name="uq_items_feed_key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    published: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)  # new|done|failed
    outcome: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # When the item was last handed to the broker: the sweeper re-enqueues items whose
    # message was lost (worker killed between commit and send, broker restarted empty).
    queued_at: Mapped[datetime | None] = mapped_column(index=True)
    # Set when the article is stored (`store_item`), before it is decided: an item still
    # `new` with an article is waiting for `decide_item`.
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    processed_at: Mapped[datetime | None]


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    canonical_url: Mapped[str] = mapped_column(String(2048), unique=True)
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    published: Mapped[datetime | None]
    text: Mapped[str] = mapped_column(Text)
    extraction: Mapped[str] = mapped_column(String(16))  # page | summary
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    story_id: Mapped[str | None] = mapped_column(String(64), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ArticleBand(Base):
    """MinHash LSH band keys: near-duplicate candidates are one indexed lookup away."""

    __tablename__ = "article_bands"

    band: Mapped[str] = mapped_column(String(48), primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )


class PreparedView(Base):
    """An article's term vector (worker.decide.match.ArticleView, as JSON), prepared by
    the process that stored the article for the one that decides it, which deletes it.
    `fingerprint` names what it was computed from (worker.decide.prepared.view_fingerprint)."""

    __tablename__ = "article_views"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class StoryRow(Base):
    """A tracked story as built from the corpus; `data` holds the Story value as JSON."""

    __tablename__ = "stories"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # One more for each transaction in which the story learns facts, counts a report or
    # records a development (worker.store.knowledge), under the story's lock: those rows
    # commit together, so a tracker that saw this count holds every such row of the
    # story, and reads none until it changes.
    changes: Mapped[int] = mapped_column(default=0, server_default="0")


class StoryFact(Base):
    """A fact a story learned from an accepted article, in learning order (the id)."""

    __tablename__ = "story_facts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Development(Base):
    __tablename__ = "developments"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    story_id: Mapped[str] = mapped_column(String(64), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), unique=True)
    new_facts: Mapped[list[Any]]
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[Any]]
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The terms the story did not know before this development (`Decision.specifics`):
    # every worker's tracker restores them to recognise later reports of it.
    specifics: Mapped[list[Any]] = mapped_column(default=list)
    # Alerted for a surge of reports (worker.decide.surge): the day's later reports belong to it.
    surge: Mapped[bool] = mapped_column(default=False)


class StoryReport(Base):
    """A matched article counted in its story's reports per day (worker.decide.surge), in
    learning order (the id: written under the story's lock, like facts)."""

    __tablename__ = "story_reports"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), unique=True)
    published: Mapped[datetime | None]


class DevelopmentSource(Base):
    """A later article that reported an already-alerted development ("also reported by")."""

    __tablename__ = "development_sources"
    __table_args__ = (
        UniqueConstraint("development_id", "article_id", name="uq_development_sources"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    development_id: Mapped[int] = mapped_column(
        ForeignKey("developments.id", ondelete="CASCADE"), index=True
    )
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    how: Mapped[str] = mapped_column(String(16))  # copy | rewrite
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """The outbox: written in the same transaction as its development."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    development_id: Mapped[int] = mapped_column(ForeignKey("developments.id"), unique=True)
    story_id: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """One alert to one destination: pending -> delivered, or failed (retry later) -> dead."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint(
            "alert_id", "destination_id", "kind", name="uq_deliveries_alert_destination_kind"
        ),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    destination_id: Mapped[str] = mapped_column(String(64))
    # "alert", or "update": the alert's one follow-up when later outlets report it.
    kind: Mapped[str] = mapped_column(String(16), default="alert", server_default="alert")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    # Until when a deliver_alert message is believed queued: the sweep does not enqueue it
    # again before then, and does after (the message was lost).
    queued_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None]
    delivered_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DestinationState(Base):
    """The circuit of one destination: consecutive transient failures, open until when."""

    __tablename__ = "destination_states"

    destination_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    open_until: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class Meta(Base):
    """Small key/value facts about the database, e.g. the fingerprint of the built corpus."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Feedback(Base):
    """A person's verdict on what storywatch did with an article (worker.web, `storywatch
    feedback`): "not-new", "wrong-story" or "development". Recorded once per article,
    story and verdict; what it changes is in worker.pipeline.feedback."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("article_id", "story_id", "verdict", name="uq_feedback"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    story_id: Mapped[str] = mapped_column(String(64), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    alert_id: Mapped[str | None] = mapped_column(String(40))
    verdict: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoryMute(Base):
    """A story whose developments make no alert until `until` (None: for good)."""

    __tablename__ = "story_mutes"

    story_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
