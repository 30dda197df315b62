"""Typed values that flow between the pipeline stages.

Data flows one way: FeedItem -> Page -> Article -> Decision (Match, Novelty) -> Alert.
Everything here is a frozen, slotted dataclass with no behaviour beyond small derived
properties: no I/O, no library imports beyond the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, get_args

# ---------------------------------------------------------------------------------------
# Configuration values (parsed and validated by settings.py)

# What an id written by a person may be (feeds, destinations, story folders and rules):
# lower-case, short, safe in URLs, file names and metric labels.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


# The closed vocabularies of the pipeline, one `Literal` each, so mypy catches a typo
# where a string would have passed; the tuples are for validating and iterating.
DestinationKind = Literal["console", "jsonl", "slack", "webhook", "apprise"]
DESTINATION_KINDS: tuple[DestinationKind, ...] = get_args(DestinationKind)
DeliveryKind = Literal["alert", "update"]
# "backlog": a check that released held items (or found the feed full) without fetching.
PollStatus = Literal["fetched", "not_modified", "unchanged", "backlog", "error", "stopped", "gone"]
ItemOutcome = Literal[
    "development", "rehash", "unmatched", "duplicate", "failed", "missing", "done"
]
ITEM_OUTCOMES: tuple[ItemOutcome, ...] = get_args(ItemOutcome)
DeliveryStatus = Literal["pending", "failed", "dead", "delivered"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)


def destination_kind(value: str | None) -> DestinationKind:
    """A kind read from destinations.toml, typed. Configuration checks it first: an
    unknown one is a problem that stops the service, and console stands in until then."""
    return next((kind for kind in DESTINATION_KINDS if kind == value), "console")


def item_outcome(value: str) -> ItemOutcome:
    """An outcome read back from the items table, where only the pipeline writes one
    ("done" stands for a row finished before outcomes were recorded)."""
    return next((outcome for outcome in ITEM_OUTCOMES if outcome == value), "done")


def delivery_kind(value: str) -> DeliveryKind:
    """A delivery's kind read back from the deliveries table."""
    return "update" if value == "update" else "alert"


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One `[[feeds]]` table of feeds.toml."""

    id: str
    url: str
    title: str | None = None
    poll_every_seconds: int = 900


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    """One `[[destinations]]` table of destinations.toml, with its secrets resolved.

    `url` and `secret` come from the environment (never from config files) and are kept
    out of `repr` so that they cannot leak into logs or tracebacks.
    """

    id: str
    kind: DestinationKind
    url: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    path: str | None = None  # jsonl only
    stories: tuple[str, ...] | None = None  # None: every story
    max_per_second: float | None = None  # None: no rate limit
    template: str | None = None  # Jinja2 source of the message text (templates.py)
    digest_every_minutes: int | None = None  # None: one message per alert (digest.py)
    # One follow-up per alert when later outlets report its development (a digest
    # destination gets none: its next digest says it).
    updates: bool = True


# "console" always means the console, configured or not: stories.toml may route a story
# there by name, and a story with no destination alerts there.
CONSOLE = DestinationConfig(id="console", kind="console")


@dataclass(frozen=True, slots=True)
class StoryRule:
    """One `[[stories]]` table of stories.toml: a hand edit of the stories built from the corpus.

    `match` names the built story it edits by id or by a word of its title; without
    `match` the rule defines a new story from its keywords alone. With `split`, the
    passages of the matched story that mention one of `keywords` become a new story with
    this rule's id, and the matched story keeps the rest.
    """

    id: str
    match: str | None = None
    title: str | None = None
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    merge: tuple[str, ...] = ()  # ids of other built stories folded into this one
    destinations: tuple[str, ...] | None = None
    split: bool = False  # move the matched story's passages that mention `keywords` out
    known_as_of: datetime | None = None  # see Story.known_as_of


# ---------------------------------------------------------------------------------------
# Network results


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What the guarded HTTP layer returns for one GET (after redirects)."""

    url: str  # final URL, after redirects
    status_code: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    # Where the leading permanent redirects (301, 308) of the request ended: the URL to ask
    # next time. None when the first hop answered, or the first redirect was temporary.
    moved_to: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304


# ---------------------------------------------------------------------------------------
# Feed and article stages


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a parsed feed. `key` is stable across polls: GUID, then link, then hash."""

    key: str
    url: str | None
    title: str | None
    summary: str | None  # plain text, tags stripped
    published: datetime | None  # timezone-aware UTC


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    items: tuple[FeedItem, ...]
    ttl_seconds: int | None = None  # RSS <ttl> or sy:updatePeriod, when the feed states one
    warnings: tuple[str, ...] = ()  # feedparser "bozo" problems that did not stop parsing


@dataclass(frozen=True, slots=True)
class Page:
    """Main text and metadata extracted from one article page."""

    text: str
    title: str | None = None
    published: datetime | None = None
    source: str | None = None  # site name
    canonical_url: str | None = None  # <link rel=canonical> / og:url when present


@dataclass(frozen=True, slots=True)
class Article:
    """An article ready for story intelligence."""

    id: str
    title: str | None
    text: str
    url: str | None = None
    source: str | None = None
    published: datetime | None = None
    # When the service first saw it (a replay: the latest date seen before it in the
    # stream). Dates an undated report for its story's known_as_of, report counts and
    # quiet spells; not for matching it to a development, whose window needs a real date.
    seen: datetime | None = None

    @property
    def when(self) -> datetime | None:
        """When it was news: published, else first seen."""
        return self.published or self.seen


@dataclass(frozen=True, slots=True)
class CorpusDocument:
    name: str  # file name (with its story folder, "folder/file.txt"), shown in `stories`
    text: str  # without the `Date:` line
    # The day the user saved it (a `Date: YYYY-MM-DD` first line): its story is known as
    # of its documents' latest day. None: undated.
    saved: date | None = None
    # The story folder it came from (`corpus/<story>/`): the user's own grouping, and the
    # story's id. None: a loose file, grouped automatically.
    story: str | None = None


# ---------------------------------------------------------------------------------------
# Story intelligence


@dataclass(frozen=True, slots=True)
class Story:
    """A tracked story as built from the corpus (and edited by stories.toml)."""

    id: str
    title: str
    key_terms: tuple[str, ...]
    documents: tuple[str, ...]
    facts: tuple[str, ...]  # known-fact sentences from the corpus
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    destinations: tuple[str, ...] | None = None
    # The corpus tells what the user knew as of this instant (UTC, stories.toml): reports
    # published by then are learned but never alerted. None: every report may alert.
    known_as_of: datetime | None = None


@dataclass(frozen=True, slots=True)
class Match:
    story_id: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Novelty:
    is_new: bool
    new_facts: tuple[str, ...]  # 1 to 3 sentences quoted from the article when is_new
    score: float
    reasons: tuple[str, ...]
    # The sentences an alert would quote when something other than novelty makes the
    # article a development (a surge of reports): the least known ones, lead first.
    salient: tuple[str, ...] = ()
    # The article's lead (title and first substantive sentences that may be quoted): what
    # it says happened, for judgements about the whole article (a quiet spell's end).
    lead: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The one answer to "does this article make an alert?", with its reasons."""

    article_id: str
    match: Match | None
    novelty: Novelty | None
    # The article id of a recent development of the story this article reports again
    # (another outlet's version): recorded on that development, never a second alert.
    repeats: str | None = None
    # For a new development: the article's terms its story did not know yet, by which
    # later reports of it are recognised (persisted with the development).
    specifics: tuple[str, ...] = ()
    # True when a surge of reports (worker.decide.surge), not new facts, makes this article a
    # development; the story's later reports that day are then recorded on it.
    surge: bool = False

    @property
    def story_id(self) -> str | None:
        return self.match.story_id if self.match else None

    @property
    def new_development(self) -> bool:
        return (
            self.match is not None
            and self.novelty is not None
            and self.novelty.is_new
            and self.repeats is None
        )


# ---------------------------------------------------------------------------------------
# Alerts


@dataclass(frozen=True, slots=True)
class AlertContent:
    """Everything a destination needs to render one alert. `id` is stable across retries."""

    id: str
    story_id: str
    story_title: str
    article_url: str | None
    article_title: str | None
    source: str | None
    published: datetime | None
    new_facts: tuple[str, ...]
    score: float
    reasons: tuple[str, ...]
    detected_at: datetime
    also_reported_by: int = 0
    # Sent by `storywatch alerts test`: its own event type, and a JSONL destination writes
    # it beside the alerts (`<name>.test.jsonl`), never among them.
    test: bool = False
    # The follow-up of an alert: later outlets reported its development. Same `id` (the
    # alert it updates), its own `message_id`; `also_reported` lists (source, url).
    update: bool = False
    also_reported: tuple[tuple[str | None, str | None], ...] = ()

    @property
    def message_id(self) -> str:
        """The idempotency key of this message (webhook-id): the alert's id, or for its
        follow-up the id with `_update`, so a receiver that dropped repeats of the alert
        does not drop its update."""
        return f"{self.id}_update" if self.update else self.id


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one delivery attempt to one destination came to."""

    ok: bool
    permanent: bool = False  # True: retrying cannot help (4xx other than 408/429)
    retry_after_seconds: float | None = None  # from a 429/503 Retry-After header
    status_code: int | None = None
    error: str | None = None
