"""Whether a command that works on the service's data can start on its database."""

from __future__ import annotations

import sys

from worker.settings import Settings


def database_ready(settings: Settings, command: str) -> bool:
    """True when the database exists at this code's schema; otherwise says why, once, on
    stderr (with what to do), and opens nothing: opening a missing SQLite file would
    create an empty one."""
    from worker.store import reader  # noqa: PLC0415 - keeps the CLI's start light

    problem = reader.not_ready(settings.database_url)
    if problem is None:
        return True
    shown = reader.shown(settings.database_url)
    print(
        f"storywatch: {command}: the database {shown} {problem}; run `storywatch init`",
        file=sys.stderr,
    )
    return False
