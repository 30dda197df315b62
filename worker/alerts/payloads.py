"""Alert payloads: one `AlertContent` rendered for each kind of destination.

What this module is for: turning a decided development (an `AlertContent`) into the exact
bytes-to-be a destination receives: the signed-webhook JSON of DESIGN §4, a Slack
incoming-webhook message in Block Kit, a console message and a JSONL record; plus the
deterministic alert id that makes redelivery safe.

What it must not do: any I/O (no HTTP, files, clock or randomness). Delivery, signing and
retries live in `worker.delivery`; deciding whether an alert fires lives in the pipeline.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from worker.models import AlertContent
from worker.utc import as_utc

WEBHOOK_EVENT_TYPE = "story.development"
TEST_EVENT_TYPE = "storywatch.test"
UPDATE_EVENT_TYPE = "story.development.updated"

# Slack Block Kit limits (docs.slack.dev/reference/block-kit): a message holds at most 50
# blocks; a header's plain_text is at most 150 characters; a section's text and every
# text object in a context block at most 3000; a context block at most 10 elements.
SLACK_MAX_BLOCKS = 50
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_CONTEXT_MAX_ELEMENTS = 10
# The top-level `text` is the notification and accessibility fallback when blocks are
# present; Slack truncates it far later (40,000), but a fallback should stay short.
SLACK_FALLBACK_MAX = 3000
# Long titles and reason lists make the message unreadable well before Slack's limits.
_TITLE_MAX = 300
_REASONS_MAX = 1000

ELLIPSIS = "…"
TEST_STORY_TITLE = "storywatch test alert"
_WHITESPACE = re.compile(r"\s+")


def alert_id(story_id: str, development_key: str) -> str:
    """The stable id of the alert for one development of one story.

    The same development always yields the same id, so it doubles as the Standard
    Webhooks `webhook-id` (an idempotency key receivers use to drop duplicates) and as
    the delivery ledger's key. A unit separator keeps ("ab", "c") apart from ("a", "bc").
    The result never contains ".", which the Standard Webhooks signature scheme forbids in
    the message id (`{msg_id}.{timestamp}.{payload}` is what gets signed).
    """
    digest = hashlib.sha256(f"{story_id}\x1f{development_key}".encode()).hexdigest()
    return "alrt_" + digest[:24]


def iso_utc(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z` suffix, to the second. Naive datetimes are taken as UTC
    (every datetime in models.py is meant to be UTC already)."""
    if moment is None:
        return None
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------
# Machine-readable payloads


def webhook_payload(alert: AlertContent) -> dict[str, Any]:
    """The JSON body of a signed webhook, exactly as DESIGN §4 specifies."""
    return {
        "type": _event_type(alert),
        **({"test": True} if alert.test else {}),
        "id": alert.id,
        "story": {"id": alert.story_id, "title": alert.story_title},
        "article": {
            "url": alert.article_url,
            "title": alert.article_title,
            "source": alert.source,
            "published": iso_utc(alert.published),
        },
        "new_facts": list(alert.new_facts),
        "score": round(alert.score, 4),
        "reasons": list(alert.reasons),
        "detected_at": iso_utc(alert.detected_at),
        "also_reported_by": alert.also_reported_by,
        **(
            {"also_reported": [{"source": s, "url": u} for s, u in alert.also_reported]}
            if alert.update
            else {}
        ),
    }


def _event_type(alert: AlertContent) -> str:
    if alert.test:
        return TEST_EVENT_TYPE
    return UPDATE_EVENT_TYPE if alert.update else WEBHOOK_EVENT_TYPE


def jsonl_record(alert: AlertContent) -> dict[str, Any]:
    """One line of a JSONL destination: the webhook schema, so one parser reads both."""
    return webhook_payload(alert)


# ---------------------------------------------------------------------------------------
# Human-readable messages


def headline(alert: AlertContent) -> str:
    """What a human-readable message calls the alert: a test never reads as news."""
    if alert.test:
        return "Test alert"
    return "Update" if alert.update else "New development"


def console_text(alert: AlertContent) -> str:
    """A readable multi-line message for a terminal or a log file."""
    if alert.update:
        return _console_update(alert)
    lines = [f"[storywatch] {headline(alert)}: {alert.story_title}"]
    if alert.article_title:
        lines.append(f"  {alert.article_title}")
    if alert.article_url:
        lines.append(f"  {alert.article_url}")
    when = iso_utc(alert.published)
    origin = " · ".join(part for part in (alert.source, when) if part)
    if origin:
        lines.append(f"  {origin}")
    if alert.new_facts:
        lines.append("  What's new:")
        lines.extend(f'    - "{_one_line(fact)}"' for fact in alert.new_facts)
    why = "; ".join(alert.reasons) if alert.reasons else "no reasons recorded"
    lines.append(f"  Why: {why} (score {alert.score:.2f})")
    if alert.also_reported_by:
        lines.append(f"  Also reported by {_sources(alert.also_reported_by)}")
    lines.append(f"  id: {alert.id}")
    return "\n".join(lines)


def _console_update(alert: AlertContent) -> str:
    lines = [
        f"[storywatch] Update: {alert.story_title}",
        f"  {alert.article_title or alert.article_url or 'the development'} is now also reported"
        f" by {_sources(alert.also_reported_by)}:",
    ]
    lines.extend(
        f"    - {source or 'unknown'}: {url or '(no link)'}" for source, url in alert.also_reported
    )
    lines.append(f"  updates alert {alert.id}")
    return "\n".join(lines)


def slack_payload(alert: AlertContent) -> dict[str, Any]:
    """An incoming-webhook message: Block Kit blocks plus a plain `text` fallback.

    Every user-supplied string is escaped for mrkdwn (so an article cannot inject
    `<!channel>` or a fake link) and trimmed to Block Kit's limits, so Slack never answers
    `invalid_blocks` for a long title or a wall of facts.
    """
    # plain_text is shown literally, so no mrkdwn escaping; a header is a single line.
    story = f"Update: {alert.story_title}" if alert.update else alert.story_title
    title = _clip(_one_line(story), SLACK_HEADER_MAX)
    header = {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}}
    # A digest is about many articles and names none: no "Untitled article" line.
    has_article = bool(alert.article_title or alert.article_url)
    lead = [header, _section(_article_line(alert))] if has_article else [header]
    context = _context(alert)
    if alert.update:
        # Incoming webhooks cannot reply in a thread (they return no message ts): the
        # update is its own message, naming the alert's article and the new outlets.
        return {"text": _update_fallback(alert), "blocks": [*lead, _section(_update_line(alert))]}
    facts = _fact_sections(alert.new_facts, SLACK_MAX_BLOCKS - len(lead) - 1)
    return {"text": _fallback_text(alert), "blocks": [*lead, *facts, context]}


def slack_text_payload(text: str) -> dict[str, Any]:
    """A Slack message from an operator's template: one mrkdwn section and the fallback.

    The template writes Slack mrkdwn itself (links as <url|text>); the values it printed
    were escaped while rendering (`worker.alerts.templates`), so nothing is escaped here.
    """
    return {
        "text": _clip(text, SLACK_FALLBACK_MAX),
        "blocks": [_section(_clip(text, SLACK_TEXT_MAX))],
    }


def _update_line(alert: AlertContent) -> str:
    links = []
    for source, url in alert.also_reported[:20]:
        name = slack_escape(_clip(_one_line(source or url or "unknown"), _TITLE_MAX))
        safe = url and url.startswith(("http://", "https://"))
        links.append(f"<{slack_escape(url)}|{name}>" if safe and url else name)
    more = len(alert.also_reported) - len(links)
    tail = f" and {more} more" if more > 0 else ""
    text = f"Now also reported by {_sources(alert.also_reported_by)}: {', '.join(links)}{tail}"
    return _clip(text, SLACK_TEXT_MAX)


def _update_fallback(alert: AlertContent) -> str:
    return _clip(
        f"Update: {alert.story_title}: also reported by {_sources(alert.also_reported_by)}",
        SLACK_FALLBACK_MAX,
    )


def slack_escape(text: str) -> str:
    """Escape the three characters Slack reserves in mrkdwn (api.slack.com formatting,
    "Escaping text"): & < > become &amp; &lt; &gt;, and nothing else is entity-encoded."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _article_line(alert: AlertContent) -> str:
    title = alert.article_title or alert.article_url or "Untitled article"
    label = slack_escape(_clip(_one_line(title), _TITLE_MAX))
    url = alert.article_url
    # Only http(s) targets become links: a feed could carry javascript: or data: URLs.
    if url and url.lower().startswith(("http://", "https://")):
        # "|" ends the URL part of <url|label>; & < > are escaped inside the link too.
        target = slack_escape(url.replace("|", "%7C"))
        linked = f"*<{target}|{label}>*"
        if len(linked) <= SLACK_TEXT_MAX:
            return linked
    return _clip_mrkdwn(f"*{label}*", SLACK_TEXT_MAX)


def _fact_sections(facts: tuple[str, ...], room: int) -> list[dict[str, Any]]:
    """One section per new fact, quoted; the last slot says how many did not fit."""
    if not facts:
        return []
    heading = "*What's new*\n"
    sections: list[dict[str, Any]] = []
    for index, fact in enumerate(facts):
        if len(sections) == room - 1 and len(facts) - index > 1:
            more = len(facts) - index
            sections.append(_section(f"_…and {more} more new facts_"))
            break
        prefix = heading if index == 0 else ""
        quoted = "\n".join("> " + line for line in slack_escape(fact.strip()).splitlines())
        sections.append(_section(_clip_mrkdwn(prefix + (quoted or ">"), SLACK_TEXT_MAX)))
    return sections


def _context(alert: AlertContent) -> dict[str, Any]:
    parts: list[str] = []
    if alert.source:
        parts.append(f"*{slack_escape(_one_line(alert.source))}*")
    if alert.published is not None:
        parts.append(_slack_date(alert.published))
    if alert.reasons:
        reasons = slack_escape("; ".join(_one_line(r) for r in alert.reasons))
        parts.append(_clip_mrkdwn(f"Matched: {reasons}", _REASONS_MAX))
    parts.append(f"score {alert.score:.2f}")
    if alert.also_reported_by:
        parts.append(f"also reported by {_sources(alert.also_reported_by)}")
    parts.append(f"`{alert.id}`")
    elements = [
        {"type": "mrkdwn", "text": _clip_mrkdwn(part, SLACK_TEXT_MAX)}
        for part in parts[:SLACK_CONTEXT_MAX_ELEMENTS]
    ]
    return {"type": "context", "elements": elements}


def _slack_date(moment: datetime) -> str:
    """Slack date formatting: each reader sees the time in their own time zone; the text
    after "|" is the fallback shown by clients that cannot format dates."""
    stamp = int(as_utc(moment).timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{iso_utc(moment)}>"


def _fallback_text(alert: AlertContent) -> str:
    # The top-level text is mrkdwn too, so it is escaped like the blocks.
    text = (
        f"Test alert ({_one_line(alert.story_title)})"
        if alert.test
        else f"New development in {_one_line(alert.story_title)}"
    )
    if alert.article_title:
        text += f": {_one_line(alert.article_title)}"
    if alert.source:
        text += f" ({_one_line(alert.source)})"
    return _clip_mrkdwn(slack_escape(text), SLACK_FALLBACK_MAX)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _sources(count: int) -> str:
    return f"{count} other source" + ("" if count == 1 else "s")


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when something was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def _clip_mrkdwn(text: str, limit: int) -> str:
    """Like `_clip`, but never cuts an escape entity (&amp; &lt; &gt;) in half, which Slack
    would render as a stray "&am"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 4))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + ELLIPSIS


def sample_alert() -> AlertContent:
    """An AlertContent that says plainly it is a test; a fresh id, so receivers keep it."""
    now = datetime.now(UTC)
    return AlertContent(
        id=f"test_{uuid.uuid4().hex[:24]}",
        story_id="storywatch-test",
        story_title=TEST_STORY_TITLE,
        article_url=None,
        article_title="Test alert from storywatch: no story has changed",
        source="storywatch",
        published=now,
        new_facts=("This is a test alert sent by `storywatch alerts test`; ignore it.",),
        score=0.0,
        reasons=("test: sent by an operator to check this destination",),
        detected_at=now,
        test=True,
    )
