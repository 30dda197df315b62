"""Operator-written message templates for a destination's alerts (Jinja2, sandboxed).

A destination may give `template` (inline) or `template_file` (relative to the config
folder). The template sees the alert as the webhook payload of DESIGN §4 (`alert.story.title`,
`alert.article.url`, `alert.new_facts`, ...), each key also at top level. It runs in
Jinja2's immutable sandbox: a template can format an alert, not reach Python objects,
call methods that change state, or read files. Undefined names are errors, found at start
by rendering a sample alert, so a typo is a configuration error, not a silent blank.

It must not: send anything, or decide which alerts a destination gets.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from worker.alerts.payloads import sample_alert, slack_escape, webhook_payload
from worker.models import AlertContent

MAX_RENDERED_CHARS = 20_000  # more than any destination takes; stops a runaway loop

_OPTIONS: dict[str, Any] = {
    "autoescape": False,  # plain text and Slack mrkdwn, not HTML
    "undefined": StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": False,
}


def _slack_value(value: Any) -> Any:
    """Every printed value as escaped plain text: lists and dicts too (`{{ new_facts }}`),
    and a value already escaped for HTML (`|e`, a Markup whose `replace` would escape again)
    as the text it holds."""
    if value is None:
        return value
    text = str.__str__(value) if isinstance(value, str) else str(value)
    return slack_escape(text)


_ENV = ImmutableSandboxedEnvironment(**_OPTIONS)
# For Slack, every value a template prints is escaped for mrkdwn, and its own text is not:
# `<{{ article.url }}|{{ article.source }}>` stays a link, while a headline carrying
# `<!channel>` or `<https://evil|bank>` reaches the channel as text, not as a ping or a
# disguised link.
_SLACK_ENV = ImmutableSandboxedEnvironment(**_OPTIONS, finalize=_slack_value)


@lru_cache(maxsize=64)
def _compiled(source: str, slack: bool) -> Template:
    return (_SLACK_ENV if slack else _ENV).from_string(source)


def context(alert: AlertContent) -> dict[str, Any]:
    payload = webhook_payload(alert)
    return {"alert": payload, **payload}


def render(source: str, alert: AlertContent, *, slack: bool = False) -> str:
    """The rendered message; raises TemplateError (or a sandbox SecurityError) on failure.

    `slack`: escape every printed value for Slack mrkdwn (see `_SLACK_ENV`).
    """
    text = _compiled(source, slack).render(context(alert)).strip()
    return text[:MAX_RENDERED_CHARS]


def template_problem(source: str) -> str | None:
    """Why this template cannot be used (syntax, unknown names, sandbox), or None."""
    try:
        rendered = render(source, sample_alert())
    except TemplateError as exc:  # SecurityError is a TemplateError too
        line = getattr(exc, "lineno", None)  # set on syntax errors only
        where = f" (line {line})" if line else ""
        return f"template error{where}: {exc.message or exc}"
    except Exception as exc:  # e.g. {{ score // 0 }}: Python errors raised while rendering
        return f"template error: {type(exc).__name__}: {exc}"
    if not rendered:
        return "the template renders an empty message"
    return None
