"""What the story desk and its terminal twins change: feeds added by URL or OPML, verdicts
on alerts and reports, mutes.

What this module is for: the use cases behind `worker.web` writes and `storywatch
feedback` / `storywatch mute`, each one transaction, each returning what happened in a
value the caller shows. What it must not do: render, or know HTTP.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from urllib.parse import urlsplit

from worker.decide.novelty import article_sentences
from worker.errors import FeedParseError, FetchError
from worker.feeds.discover import Outline, feed_links
from worker.feeds.parse import parse_feed
from worker.fetch.net import GuardedClient
from worker.models import Decision, Match, Novelty
from worker.pipeline.outbox import record_development
from worker.pipeline.runtime import Runtime
from worker.store import articles, desk, developments, feedback, knowledge, subscriptions
from worker.store.engine import DbSession, DbSessions, transaction
from worker.text.terms import bounded_text
from worker.utc import parse_iso

DEFAULT_EVERY_SECONDS = 900
MAX_IMPORT = 5000  # feeds in one OPML import


@dataclass(frozen=True, slots=True)
class FeedAdded:
    feed_id: str
    url: str
    title: str | None
    discovered_from: str | None = None  # the page whose <link rel="alternate"> named it


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str
    missing: bool = False  # nothing goes by the id asked for (an API caller's 404)


@dataclass(frozen=True, slots=True)
class Imported:
    added: tuple[FeedAdded, ...]
    skipped: tuple[tuple[str, str], ...]  # (url, why) each


def feed_id_for(url: str) -> str:
    """A readable, stable id: `desk-<host>-<8 hex of the URL>`."""
    host = re.sub(r"[^a-z0-9]+", "-", (urlsplit(url).hostname or "feed").lower()).strip("-")
    return f"desk-{host[:40]}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def _web_url(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname  # raises for a broken address such as "http://[::1/x"
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not host:
        return None
    return url.strip()


def add_feed(
    sessions: DbSessions, client: GuardedClient, url: str, now: datetime
) -> FeedAdded | Refused:
    """Add a feed by its URL, or by a site's URL whose page names its feed. The URL is
    fetched (through the SSRF guard) so that what is added is a feed that answers."""
    checked = _web_url(url)
    if checked is None:
        return Refused(f"{url!r} is not an http(s) address")
    with transaction(sessions) as session:
        why = _known_as(subscriptions.feed_urls(session), checked)
        if why is not None:
            return Refused(f"{checked}: {why}")
    try:
        found = _find_feed(client, checked)
    except (FetchError, FeedParseError) as exc:
        return Refused(str(exc))
    if isinstance(found, Refused):
        return found
    with transaction(sessions) as session:
        known = subscriptions.feed_urls(session)
        why = _known_as(known, found.url) or subscriptions.add_desk_feed(
            session, found.feed_id, found.url, found.title, DEFAULT_EVERY_SECONDS, now, known
        )
    return Refused(f"{found.url}: {why}") if why is not None else found


def _known_as(known: dict[str, subscriptions.KnownFeed], url: str) -> str | None:
    """Why `url` cannot be added, being a stored feed's; None when it is not."""
    feed = known.get(url)
    if feed is None:
        return None
    if feed.watched:
        return f"already watched (as {feed.feed_id})"
    return f"feeds.toml's feed {feed.feed_id}, which left the file: add it back there"


def _find_feed(client: GuardedClient, url: str) -> FeedAdded | Refused:
    result = client.get(
        url,
        accept="application/rss+xml, application/atom+xml, "
        "application/feed+json, text/html;q=0.8, */*;q=0.5",
    )
    try:
        parsed = parse_feed(result.body, url=result.url, headers=result.headers)
        return FeedAdded(feed_id_for(url), url, parsed.title)
    except FeedParseError:
        pass
    page = result.body.decode("utf-8", errors="replace")
    links = feed_links(page, result.url)
    if not links:
        return Refused(f"{url} is neither a feed nor a page that names one")
    feed = links[0]
    answer = client.get(feed.url)
    parsed = parse_feed(answer.body, url=answer.url, headers=answer.headers)
    return FeedAdded(feed_id_for(feed.url), feed.url, parsed.title or feed.title, url)


def stop_watching(sessions: DbSessions, feed_id: str) -> Refused | None:
    """Stop polling a feed added on the desk or by OPML import; None when done."""
    with transaction(sessions) as session:
        done = subscriptions.stop_watching(session, feed_id)
    if done == "missing":
        return Refused(f"there is no feed {feed_id!r}", missing=True)
    if done == "configured":
        return Refused(f"{feed_id} is listed in feeds.toml: remove it there")
    return None


def import_outlines(sessions: DbSessions, outlines: list[Outline], now: datetime) -> Imported:
    """Add every outline's feed not already watched, in one transaction; the rest are
    reported, each with why. Not fetched here: the first poll (due now) checks each."""
    added: list[FeedAdded] = []
    skipped: list[tuple[str, str]] = []
    listed: set[str] = set()
    with transaction(sessions) as session:
        known = subscriptions.feed_urls(session)
        for number, outline in enumerate(outlines):
            url = _web_url(outline.url)
            if number >= MAX_IMPORT:
                skipped.append((outline.url, f"over the {MAX_IMPORT} feeds one import takes"))
            elif url is None:
                skipped.append((outline.url, "not an http(s) address"))
            elif url in listed:
                skipped.append((url, "listed earlier in this document"))
            elif (why := _known_as(known, url)) is not None:
                skipped.append((url, why))
            else:
                feed = FeedAdded(feed_id_for(url), url, outline.title)
                why = subscriptions.add_desk_feed(
                    session, feed.feed_id, url, feed.title, DEFAULT_EVERY_SECONDS, now, known
                )
                if why is None:
                    added.append(feed)
                else:
                    skipped.append((url, why))
            if url is not None:
                listed.add(url)
    return Imported(tuple(added), tuple(skipped))


@dataclass(frozen=True, slots=True)
class Recorded:
    story_id: str
    article_id: int
    verdict: str
    new: bool  # False: the same verdict was given before (and changed nothing)
    alert_id: str | None = None  # "development": the alert it made now


def give_verdict(
    runtime: Runtime,
    *,
    verdict: str,
    alert_id: str | None = None,
    article_id: int | None = None,
    story_id: str | None = None,
    note: str | None = None,
) -> Recorded | Refused:
    """Record a verdict and apply it, in one transaction:

    - "wrong-story" (on an alert): the story unlearns the article (its facts and its
      report) and rejects it: articles closer to it than to the story stop matching;
    - "not-new" (on an alert): the story asks more of a claim (`Tracker.not_new`);
    - "development" (on a report the story matched but did not alert, or on an article
      that matched no story): it is alerted now, quoting the report's lead, to the
      story's destinations; an unmatched article is first learned by the story, as a
      match would have been (`_adopt`).

    Every verdict makes each worker's tracker rebuild with it at its next item. The
    development and alert a wrong verdict is about stay: decisions are history.
    """
    if verdict not in feedback.VERDICTS:
        return Refused(f"unknown verdict {verdict!r}: one of {', '.join(feedback.VERDICTS)}")
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        if alert_id is not None:
            target = feedback.alert_target(session, alert_id)
            if target is None:
                return Refused(f"no alert {alert_id}")
            story_id, article_id = target.story_id, target.article_id
        if story_id is None or article_id is None:
            return Refused("give an alert, or a report's article and story")
        # Verdicts on one article one at a time: two people giving an unmatched article
        # to two stories at once would both pass the checks below, and the second would
        # fail on a unique key instead of being refused.
        articles.lock(session, article_id)
        refused = _refusal(session, verdict, story_id, article_id)
        if refused is not None:
            return refused
        adopt = verdict == "development" and not desk.reported(session, story_id, article_id)
        new = feedback.record(
            session,
            story_id=story_id,
            article_id=article_id,
            verdict=verdict,
            now=now,
            alert_id=alert_id,
            note=note,
        )
        made = None
        if new and verdict == "wrong-story":
            knowledge.unlearn(session, story_id, article_id)
        elif new and verdict == "not-new":
            knowledge.bump_version(session)
        elif new and verdict == "development":
            if adopt:
                _adopt(runtime, session, story_id, article_id)
            made = _promote(runtime, session, story_id, article_id)
            knowledge.bump_version(session)
    return Recorded(story_id, article_id, verdict, new, made)


# Verdicts that contradict each other: "not new" says the article is about the story.
_CONTRARY = {"not-new": "wrong-story", "wrong-story": "not-new"}


def _refusal(session: DbSession, verdict: str, story_id: str, article_id: int) -> Refused | None:
    """Why the verdict cannot be given on the story's article, or None."""
    contrary = _CONTRARY.get(verdict)
    if contrary is not None and contrary in feedback.given(session, story_id, article_id):
        return Refused(f"article {article_id} was judged {contrary} already")
    if verdict != "development":
        return None
    if developments.made_by(session, story_id, article_id):
        return Refused(f"article {article_id} already made a development of {story_id}")
    if not desk.story_exists(session, story_id):
        return Refused(f"no story {story_id}")
    if desk.reported(session, story_id, article_id) or desk.is_unmatched(session, article_id):
        return None
    return Refused(
        f"article {article_id} is neither a report of {story_id} nor one that matched no story"
    )


def _adopt(runtime: Runtime, session: DbSession, story_id: str, article_id: int) -> None:
    """An article that matched no story, given to one by a person: the story learns it
    as `Tracker.learn` learns a match (its first sentences, one report), under the
    story's lock as the decider learns, and the article is the story's from now on."""
    article = articles.get(session, article_id)
    if article is None:
        return
    knowledge.lock_story(session, story_id)
    config = runtime.trackers.config
    text = bounded_text(article.text, config.max_article_chars)
    sentences = article_sentences(article.title, text)[: config.max_learned_sentences]
    knowledge.learn(
        session, story_id, article_id, sentences, article.published or article.created_at
    )
    articles.assign_story(session, article_id, story_id)


def _promote(runtime: Runtime, session: DbSession, story_id: str, article_id: int) -> str | None:
    """Alert a report a person says was a development; the story remembers it as one."""
    article = articles.get(session, article_id)
    if article is None:
        return None
    lead = tuple(s for s in article_sentences(article.title, article.text) if len(s.split()) >= 6)[
        :3
    ]
    reason = "a person marked this report a development"
    decision = Decision(
        article_id=str(article_id),
        match=Match(story_id, article.score or 0.0, (reason,)),
        novelty=Novelty(is_new=True, new_facts=lead, score=0.0, reasons=(), salient=lead),
    )
    # The story from the database, not the process's tracker: the desk holds none, and
    # without the story the alert would carry its id for a title and ignore the
    # destinations the story names.
    story = knowledge.stored_story(session, story_id)
    # No longer another outlet's report of the development it was taken to repeat.
    developments.drop_source(session, story_id, article_id)
    return record_development(runtime, session, article, decision, story)


def set_mute(
    sessions: DbSessions, story_id: str, until: datetime | None, now: datetime
) -> Refused | None:
    """Mute a story until `until` (None: for good); the refusal, or None."""
    if until is not None and until <= now:
        return Refused(f"the mute would end before it starts ({until.isoformat()})")
    with transaction(sessions) as session:
        if not desk.story_exists(session, story_id):
            return Refused(f"no story {story_id}")
        feedback.mute(session, story_id, until, now)
    return None


def unmute(sessions: DbSessions, story_id: str) -> bool:
    """False when the story was not muted."""
    with transaction(sessions) as session:
        return feedback.unmute(session, story_id)


def parse_until(raw: str) -> datetime | str | None:
    """A mute's end from a date (YYYY-MM-DD or YYYYMMDD: the day's end, UTC) or an ISO
    8601 time; "" is for good."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), time.max, tzinfo=UTC)
    except ValueError:
        pass
    return parse_iso(raw) or f"not a date: {raw!r} (YYYY-MM-DD or ISO 8601)"
