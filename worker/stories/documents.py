"""Corpus files as documents: the `Date:` line that dates one, and the day a story is known.

What this module is for: reading a corpus file's text into a `CorpusDocument` (its
`Date: YYYY-MM-DD` first line taken off and kept as the day the user saved it), and
dating a story by its documents. Pure: callers read the files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time

from worker.models import CorpusDocument, Story

# A document's first non-blank line may date it: "Date: 2024-12-28" (ISO 8601 day).
_DATE_LINE = re.compile(r"^\s*date\s*:\s*(?P<value>.*?)\s*$", re.IGNORECASE)


def corpus_document(name: str, raw: str, story: str | None = None) -> CorpusDocument:
    """A corpus file's text as a document, its `Date: YYYY-MM-DD` first line read off.

    Raises ValueError naming the problem when the first line says `Date:` but no ISO day
    follows: a misspelt date would otherwise silently leave the story undated (and every
    report of the past days would alert).
    """
    lines = raw.lstrip("\ufeff").splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return CorpusDocument(name, raw, story=story)
    dated = _DATE_LINE.match(lines[first])
    if dated is None:
        return CorpusDocument(name, raw, story=story)
    try:
        saved = date.fromisoformat(dated["value"])
    except ValueError:
        raise ValueError(
            f"{name}: first line {lines[first].strip()!r}: expected a day such as "
            "'Date: 2024-12-28'"
        ) from None
    text = "\n".join(lines[first + 1 :])
    return CorpusDocument(name, text, saved=saved, story=story)


def documents_known_as_of(documents: Sequence[CorpusDocument]) -> datetime | None:
    """The end (UTC) of the latest day the documents were saved; None when none is dated.

    A day covers its whole day: a report published on it was known to the user.
    """
    latest = max((d.saved for d in documents if d.saved is not None), default=None)
    return None if latest is None else datetime.combine(latest, time.max, tzinfo=UTC)


def dated(story: Story, documents: Sequence[CorpusDocument]) -> Story:
    """The story known as of its own documents' latest day (None: none is dated)."""
    by_name = {d.name: d for d in documents}
    ours = [by_name[name] for name in story.documents if name in by_name]
    return replace(story, known_as_of=documents_known_as_of(ours))
