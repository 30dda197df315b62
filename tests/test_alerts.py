"""Alert payloads: the webhook JSON contract, Slack Block Kit limits and escaping, ids."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from worker.alerts.payloads import (
    SLACK_HEADER_MAX,
    SLACK_MAX_BLOCKS,
    SLACK_TEXT_MAX,
    alert_id,
    console_text,
    jsonl_record,
    slack_escape,
    slack_payload,
    webhook_payload,
)
from worker.models import AlertContent


def make_alert(**changes: object) -> AlertContent:
    values: dict[str, object] = {
        "id": alert_id("story-azal-crash", "dev-1"),
        "story_id": "story-azal-crash",
        "story_title": "Azerbaijan Airlines Flight 8243 crash",
        "article_url": "https://news.example/azal?id=1&lang=en",
        "article_title": "Investigators publish preliminary report",
        "source": "Example News",
        "published": datetime(2025, 2, 3, 9, 30, tzinfo=UTC),
        "new_facts": (
            "The preliminary report says the aircraft was hit by external objects.",
            "Kazakhstan's transport ministry released the report on 3 February.",
        ),
        "score": 0.812345,
        "reasons": ("entities: Azerbaijan Airlines, Aktau", "terms: crash, report"),
        "detected_at": datetime(2025, 2, 3, 10, 0, 5, 123456, tzinfo=UTC),
        "also_reported_by": 2,
    }
    values.update(changes)
    return AlertContent(**values)  # type: ignore[arg-type]


def all_texts(payload: dict[str, object]) -> list[str]:
    """Every text string in a Block Kit payload, to check limits and escaping."""
    texts: list[str] = []
    for block in payload["blocks"]:  # type: ignore[attr-defined]
        if "text" in block:
            texts.append(block["text"]["text"])
        for element in block.get("elements", []):
            texts.append(element["text"])
    return texts


# ---------------------------------------------------------------------------------------
# alert_id


def test_alert_id_is_deterministic_and_prefixed() -> None:
    first = alert_id("story-1", "dev-abc")
    assert first == alert_id("story-1", "dev-abc")
    assert re.fullmatch(r"alrt_[0-9a-f]{24}", first)


def test_alert_id_differs_per_story_and_development_and_is_unambiguous() -> None:
    ids = {
        alert_id("story-1", "dev-abc"),
        alert_id("story-2", "dev-abc"),
        alert_id("story-1", "dev-abd"),
        alert_id("ab", "c"),
        alert_id("a", "bc"),
    }
    assert len(ids) == 5


def test_alert_id_never_contains_a_dot() -> None:
    # Standard Webhooks signs "{msg_id}.{timestamp}.{body}": a dot in the id is unsafe.
    assert "." not in alert_id("story.with.dots", "dev.key")


# ---------------------------------------------------------------------------------------
# webhook_payload / jsonl_record


def test_webhook_payload_has_exactly_the_design_shape() -> None:
    alert = make_alert()
    payload = webhook_payload(alert)
    assert payload == {
        "type": "story.development",
        "id": alert.id,
        "story": {"id": "story-azal-crash", "title": "Azerbaijan Airlines Flight 8243 crash"},
        "article": {
            "url": "https://news.example/azal?id=1&lang=en",
            "title": "Investigators publish preliminary report",
            "source": "Example News",
            "published": "2025-02-03T09:30:00Z",
        },
        "new_facts": list(alert.new_facts),
        "score": 0.8123,
        "reasons": list(alert.reasons),
        "detected_at": "2025-02-03T10:00:05Z",
        "also_reported_by": 2,
    }
    json.dumps(payload)  # serializable as is


def test_webhook_payload_converts_timestamps_to_utc() -> None:
    baku = timezone(timedelta(hours=4))
    alert = make_alert(
        published=datetime(2025, 2, 3, 13, 30, tzinfo=baku),
        detected_at=datetime(2025, 2, 3, 10, 0),  # naive: taken as UTC
    )
    payload = webhook_payload(alert)
    assert payload["article"]["published"] == "2025-02-03T09:30:00Z"
    assert payload["detected_at"] == "2025-02-03T10:00:00Z"


def test_webhook_payload_keeps_missing_article_fields_as_null() -> None:
    alert = make_alert(article_url=None, article_title=None, source=None, published=None)
    article = webhook_payload(alert)["article"]
    assert article == {"url": None, "title": None, "source": None, "published": None}


def test_jsonl_record_is_one_json_line_with_the_webhook_schema() -> None:
    alert = make_alert(new_facts=("A fact\nover two lines.",))
    line = json.dumps(jsonl_record(alert))
    assert "\n" not in line
    assert json.loads(line) == webhook_payload(alert)


# ---------------------------------------------------------------------------------------
# slack_payload


def test_slack_payload_has_header_link_facts_and_context() -> None:
    alert = make_alert()
    payload = slack_payload(alert)
    blocks = payload["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context"]
    assert blocks[0]["text"] == {
        "type": "plain_text",
        "text": "Azerbaijan Airlines Flight 8243 crash",
        "emoji": True,
    }
    # The link: & in the URL is escaped per Slack's rules, the label is the article title.
    assert blocks[1]["text"]["text"] == (
        "*<https://news.example/azal?id=1&amp;lang=en|Investigators publish preliminary report>*"
    )
    assert blocks[2]["text"]["text"].startswith("*What's new*\n> The preliminary report")
    assert blocks[3]["text"]["text"] == (
        "> Kazakhstan's transport ministry released the report on 3 February."
    )
    context = " | ".join(e["text"] for e in blocks[4]["elements"])
    assert "*Example News*" in context
    assert "<!date^1738575000^" in context  # 2025-02-03T09:30:00Z, rendered in reader's zone
    assert "|2025-02-03T09:30:00Z>" in context
    assert "Matched: entities: Azerbaijan Airlines, Aktau; terms: crash, report" in context
    assert "also reported by 2 other sources" in context
    assert alert.id in context
    assert payload["text"] == (
        "New development in Azerbaijan Airlines Flight 8243 crash: "
        "Investigators publish preliminary report (Example News)"
    )


def test_slack_payload_escapes_control_characters_everywhere() -> None:
    alert = make_alert(
        article_title="Q&A: <b>who</b> pays?",
        source="A&B <!channel>",
        new_facts=("Costs > $1bn & rising <!here>",),
        reasons=("terms: <script>",),
    )
    payload = slack_payload(alert)
    texts = [payload["text"], *all_texts(payload)[1:]]  # the header is plain_text
    for text in texts:
        without_entities = re.sub(r"&(amp|lt|gt);", "", text)
        assert "&" not in without_entities
        # Only our own link and date tokens use angle brackets.
        for token in re.findall(r"<[^>]*>", text):
            assert token.startswith(("<https://", "<!date^")), token
    assert "Q&amp;A: &lt;b&gt;who&lt;/b&gt; pays?" in payload["blocks"][1]["text"]["text"]
    assert "&lt;!here&gt;" in payload["blocks"][2]["text"]["text"]


def test_slack_payload_respects_block_kit_limits_with_huge_content() -> None:
    facts = tuple(f"Fact {i}: " + "details & more <x> " * 400 for i in range(120))
    alert = make_alert(
        story_title="Enormous story title " * 40,
        article_title="Headline " * 1000,
        new_facts=facts,
        reasons=tuple("reason " * 50 for _ in range(60)),
    )
    payload = slack_payload(alert)
    blocks = payload["blocks"]
    assert len(blocks) <= SLACK_MAX_BLOCKS
    header = blocks[0]["text"]["text"]
    assert len(header) <= SLACK_HEADER_MAX
    assert header.endswith("…")
    for block in blocks[1:]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SLACK_TEXT_MAX
    assert blocks[-1]["type"] == "context"
    assert len(blocks[-1]["elements"]) <= 10
    assert all(len(e["text"]) <= SLACK_TEXT_MAX for e in blocks[-1]["elements"])
    assert len(payload["text"]) <= SLACK_TEXT_MAX
    # Facts that did not fit are counted, not silently dropped.
    fact_blocks = blocks[2:-1]
    assert fact_blocks[-1]["text"]["text"] == f"_…and {120 - len(fact_blocks) + 1} more new facts_"
    # Truncation never leaves half an escape entity behind.
    for text in all_texts(payload):
        assert not re.search(r"&(a|am|l|g)?…", text), text


def test_slack_payload_with_exactly_as_many_facts_as_fit_drops_nothing() -> None:
    room = SLACK_MAX_BLOCKS - 3  # header, link, context
    payload = slack_payload(make_alert(new_facts=tuple(f"fact {i}" for i in range(room))))
    assert len(payload["blocks"]) == SLACK_MAX_BLOCKS
    assert "more new facts" not in json.dumps(payload)


def test_slack_payload_without_url_or_unsafe_url_shows_no_link() -> None:
    no_url = slack_payload(make_alert(article_url=None))["blocks"][1]["text"]["text"]
    assert no_url == "*Investigators publish preliminary report*"
    script = slack_payload(make_alert(article_url="javascript:alert(1)"))
    assert "javascript" not in script["blocks"][1]["text"]["text"]


def test_slack_payload_without_facts_or_published_time() -> None:
    payload = slack_payload(make_alert(new_facts=(), published=None, also_reported_by=0))
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "context"]
    context = json.dumps(payload["blocks"][-1])
    assert "<!date" not in context
    assert "also reported" not in context


def test_slack_escape_only_touches_the_three_reserved_characters() -> None:
    assert slack_escape("a & b < c > d 'e' \"f\" *g*") == "a &amp; b &lt; c &gt; d 'e' \"f\" *g*"


# ---------------------------------------------------------------------------------------
# console_text


def test_console_text_is_readable_and_complete() -> None:
    alert = make_alert()
    text = console_text(alert)
    lines = text.splitlines()
    assert lines[0] == "[storywatch] New development: Azerbaijan Airlines Flight 8243 crash"
    assert "  Investigators publish preliminary report" in lines
    assert "  https://news.example/azal?id=1&lang=en" in lines
    assert "  Example News · 2025-02-03T09:30:00Z" in lines
    assert '    - "Kazakhstan\'s transport ministry released the report on 3 February."' in lines
    assert "  Why: entities: Azerbaijan Airlines, Aktau; terms: crash, report (score 0.81)" in lines
    assert "  Also reported by 2 other sources" in lines
    assert lines[-1] == f"  id: {alert.id}"


@pytest.mark.parametrize(("count", "expected"), [(1, "1 other source"), (3, "3 other sources")])
def test_console_text_counts_other_sources(count: int, expected: str) -> None:
    assert f"Also reported by {expected}" in console_text(make_alert(also_reported_by=count))


@pytest.mark.parametrize("shift", range(5))
def test_slack_truncation_never_cuts_an_escape_entity_in_half(shift: int) -> None:
    # "&" escapes to five characters, so some shift lands the cut inside "&amp;".
    payload = slack_payload(make_alert(new_facts=("x" * shift + "&" * 2000,)))
    text = payload["blocks"][2]["text"]["text"]
    assert len(text) <= SLACK_TEXT_MAX
    assert text.endswith("&amp;…")
