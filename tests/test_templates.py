"""Per-destination message templates: sandboxed Jinja2, checked at start, used by every kind."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook

from tests.conftest import write_config
from worker.alerts.templates import render, template_problem
from worker.delivery.notify import deliver
from worker.errors import ConfigError
from worker.models import AlertContent, DestinationConfig
from worker.settings import load_settings

ALERT = AlertContent(
    id="alrt_0123456789abcdef01234567",
    story_id="azal-crash",
    story_title="Azerbaijan Airlines crash near Aktau",
    article_url="https://news.example/report",
    article_title="Final report published",
    source="Caspian Wire",
    published=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    new_facts=("147 fragments were identified.", "Baku will seek $410 million."),
    score=0.71,
    reasons=("shared: Aktau, Embraer",),
    detected_at=datetime(2026, 11, 20, 9, 31, tzinfo=UTC),
)
TEMPLATE = (
    "*{{ story.title }}*: {{ new_facts | length }} new\n"
    "{% for fact in new_facts %}- {{ fact }}\n{% endfor %}<{{ article.url }}|{{ article.source }}>"
)


def test_a_template_sees_the_alert_as_the_webhook_payload() -> None:
    assert render(TEMPLATE, ALERT) == (
        "*Azerbaijan Airlines crash near Aktau*: 2 new\n"
        "- 147 fragments were identified.\n- Baku will seek $410 million.\n"
        "<https://news.example/report|Caspian Wire>"
    )


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ story.title ", "template error"),
        ("{{ headline }}", "'headline' is undefined"),
        ("{{ alert.__class__.__mro__ }}", "template error"),
        ("{{ new_facts.append('forged') }}", "template error"),
        ("{% if false %}x{% endif %}", "empty message"),
        ("{{ score // 0 }}", "ZeroDivisionError"),
    ],
)
def test_bad_templates_are_reported_at_start(source: str, fragment: str) -> None:
    problem = template_problem(source)
    assert problem is not None and fragment in problem


def test_template_errors_are_configuration_errors_with_file_and_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "out"\nkind = "console"\ntemplate = "{{ nope }}"\n'
        '\n[[destinations]]\nid = "file"\nkind = "console"\ntemplate_file = "missing.j2"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings({"STORYWATCH_CONFIG_DIR": str(config)}, dotenv=False)
    text = "\n".join(caught.value.problems)
    assert "destinations[0].template: template error" in text
    assert "destinations[1].template_file: cannot read" in text


def test_template_files_are_read_relative_to_the_config_folder(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        destinations='[[destinations]]\nid = "out"\nkind = "console"\ntemplate_file = "t/a.j2"\n',
    )
    (config / "t").mkdir()
    (config / "t" / "a.j2").write_text(TEMPLATE)
    [out] = load_settings({"STORYWATCH_CONFIG_DIR": str(config)}, dotenv=False).destinations
    assert out.template == TEMPLATE


def test_console_and_slack_use_the_template_text(httpserver: HTTPServer) -> None:
    stream = io.StringIO()
    console = DestinationConfig(id="out", kind="console", template=TEMPLATE)
    with httpx.Client() as client:
        assert deliver(ALERT, console, client=client, stream=stream).ok
        httpserver.expect_request("/slack").respond_with_data("ok")
        slack = DestinationConfig(
            id="s", kind="slack", url=httpserver.url_for("/slack"), template=TEMPLATE
        )
        assert deliver(ALERT, slack, client=client).ok
    assert stream.getvalue().startswith("*Azerbaijan Airlines crash near Aktau*: 2 new")
    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent["text"] == render(TEMPLATE, ALERT)
    assert sent["blocks"][0]["text"]["text"] == render(TEMPLATE, ALERT)


def test_webhooks_keep_the_contract_and_add_the_message(httpserver: HTTPServer) -> None:
    secret = "whsec_dGVtcGxhdGUtdGVzdC1zZWNyZXQ="
    httpserver.expect_request("/hook").respond_with_data("ok")
    hook = DestinationConfig(
        id="h", kind="webhook", url=httpserver.url_for("/hook"), secret=secret, template=TEMPLATE
    )
    with httpx.Client() as client:
        assert deliver(ALERT, hook, client=client).ok
    request = httpserver.log[0][0]
    payload = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert payload["message"] == render(TEMPLATE, ALERT)
    assert payload["story"]["id"] == "azal-crash" and payload["type"] == "story.development"


def test_a_template_failing_on_a_real_alert_falls_back_to_the_built_in_format() -> None:
    stream = io.StringIO()
    # Passes the start-up check (the sample has a published time), fails on this alert.
    fragile = DestinationConfig(
        id="out", kind="console", template="{{ article.published[0:4] ~ (1 / (score - 0.71)) }}"
    )
    with httpx.Client() as client:
        assert deliver(ALERT, fragile, client=client, stream=stream).ok
    assert "Azerbaijan Airlines crash near Aktau" in stream.getvalue()


def test_slack_templates_escape_the_values_they_print(httpserver: HTTPServer) -> None:
    hostile = dataclasses.replace(
        ALERT,
        new_facts=("Officials said <!channel> temps <5C & rising.",),
        source="Wire <https://evil.example|Bank>",
    )
    httpserver.expect_request("/slack").respond_with_data("ok")
    slack = DestinationConfig(
        id="s", kind="slack", url=httpserver.url_for("/slack"), template=TEMPLATE
    )
    stream = io.StringIO()
    console = DestinationConfig(id="out", kind="console", template=TEMPLATE)
    with httpx.Client() as client:
        assert deliver(hostile, slack, client=client).ok
        assert deliver(hostile, console, client=client, stream=stream).ok
    text = json.loads(httpserver.log[0][0].get_data())["blocks"][0]["text"]["text"]
    assert "- Officials said &lt;!channel&gt; temps &lt;5C &amp; rising." in text
    # The template's own link markup stays a link; the printed source cannot open another.
    assert text.endswith("<https://news.example/report|Wire &lt;https://evil.example|Bank&gt;>")
    assert "<!channel>" not in text
    # Whatever a template prints is escaped once: a list too, and an HTML-escaped value
    # (`|e`) as the text it holds, not escaped again by its own `replace`.
    listed = render("{{ new_facts }} | {{ new_facts[0] | e }}", hostile, slack=True)
    assert listed.startswith("['Officials said &lt;!channel&gt; temps &lt;5C &amp; rising.']")
    assert listed.endswith(
        "| Officials said &amp;lt;!channel&amp;gt; temps &amp;lt;5C &amp;amp; rising."
    )
    assert "&amp;amp;amp;" not in listed
    # Other kinds get the text as it is.
    assert "<!channel> temps <5C & rising." in stream.getvalue()


def test_a_template_rendering_nothing_falls_back_to_the_built_in_format() -> None:
    loop_only = "{% for fact in new_facts %}{{ fact }}\n{% endfor %}"
    assert template_problem(loop_only) is None  # the sample alert has facts
    stream = io.StringIO()
    console = DestinationConfig(id="out", kind="console", template=loop_only)
    with httpx.Client() as client:
        outcome = deliver(
            dataclasses.replace(ALERT, new_facts=()), console, client=client, stream=stream
        )
    assert outcome.ok
    assert "Azerbaijan Airlines crash near Aktau" in stream.getvalue()
