"""Atom 1.0 (RFC 4287) documents of developments, so any feed reader follows storywatch.

Pure: entries in, XML text out. Every value is escaped by ElementTree, and stripped of
what XML cannot carry at all (a control character in one title would make every reader
reject the whole feed).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from worker.text.html import without_controls
from worker.utc import as_utc

ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str  # a stable URI (urn:storywatch:alert:...)
    title: str
    link: str | None
    updated: datetime
    summary: str
    source: str | None = None


def atom(
    *,
    feed_id: str,
    title: str,
    self_url: str,
    alternate: str,
    entries: Sequence[Entry],
    updated: datetime,
) -> str:
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _child(feed, "id", feed_id)
    _child(feed, "title", title)
    _child(feed, "updated", _stamp(max((e.updated for e in entries), default=updated)))
    _link(feed, "self", self_url)
    _link(feed, "alternate", alternate)
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _child(author, "name", "storywatch")
    for entry in entries:
        element = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _child(element, "id", entry.id)
        _child(element, "title", entry.title)
        _child(element, "updated", _stamp(entry.updated))
        if entry.link:
            _link(element, "alternate", entry.link)
        _child(element, "summary", entry.summary)
        if entry.source:
            category = ET.SubElement(element, f"{{{ATOM}}}category")
            category.set("term", without_controls(entry.source))
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode")


def _child(parent: ET.Element, name: str, text: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{name}").text = without_controls(text)


def _link(parent: ET.Element, rel: str, href: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}link", rel=rel, href=without_controls(href))


def _stamp(moment: datetime) -> str:
    return as_utc(moment).isoformat().replace("+00:00", "Z")
