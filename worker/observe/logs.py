"""structlog setup: JSON lines in production, readable console on a terminal, no secrets.

Event names are constant (`feed.not_modified`), keys stable snake_case (`feed_id`,
`story_id`, `status_code`). Context is bound once per task with `bind_task_context`.
The redaction processor runs last so nothing a caller binds can leak a secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(secret|token|password|passwd|authorization|api_key|signature)", re.I)
# URL userinfo and the token path of Slack incoming webhooks are credentials.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+(:[^/@\s]*)?@", re.I)
_SLACK_HOOK = re.compile(r"(hooks\.slack\.com/(services|workflows|triggers)/)[^\s\"']+", re.I)
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]+")

_secret_values: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember configured secret values so that they are masked wherever they appear."""
    _secret_values.update(v for v in values if v and len(v) >= 6)


def redact_text(text: str) -> str:
    for value in _secret_values:
        if value in text:
            text = text.replace(value, "[redacted]")
    text = _URL_USERINFO.sub(r"\g<scheme>[redacted]@", text)
    text = _SLACK_HOOK.sub(r"\1[redacted]", text)
    return _WHSEC.sub("whsec_[redacted]", text)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named keys and secret-looking values."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and value is not None:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Route structlog (and stdlib logging, e.g. Celery's) through one renderer."""
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # One write per line (print() makes two: the text, then the newline), so lines of
        # threads logging at once, and of stdlib logging beside it, never interleave.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # A stdlib record's traceback (Celery's "Unrecoverable error") as text in
                # JSON: the renderer would print the exc_info tuple's repr and lose it. The
                # console renderer formats exceptions itself.
                *([structlog.processors.format_exc_info] if json_output else []),
                redact_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO with the full URL (tokens included): keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def bind_task_context(**values: Any) -> None:
    """Bind context (task name and id, feed/item/alert ids) for the rest of this task."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**values)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
