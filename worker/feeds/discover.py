"""Feeds from what people paste: a site's `<link rel="alternate">` feeds, and OPML lists.

Pure functions over bytes already fetched (the guarded client fetches). OPML is read with
the standard library's expat parser, which refuses external entities and, since expat
2.4.1, entity-expansion bombs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin
from xml.sax.saxutils import quoteattr

from worker.text.html import without_controls

FEED_TYPES = {
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
}


@dataclass(frozen=True, slots=True)
class Outline:
    url: str
    title: str | None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.found: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        if tag not in {"link", "a"}:
            return
        rel = {r.lower() for r in values.get("rel", "").split()}
        kind = values.get("type", "").split(";")[0].strip().lower()
        if "alternate" in rel and kind in FEED_TYPES and values.get("href"):
            self.found.append((values["href"], values.get("title") or None))


def feed_links(page: str, page_url: str) -> list[Outline]:
    """The feeds a page announces with `<link rel="alternate" type="...">`, resolved
    against the page (or its `<base>`), in page order, each once."""
    parser = _Links()
    parser.feed(page)
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    seen: dict[str, Outline] = {}
    for href, title in parser.found:
        url = urljoin(base, href.strip())
        if url.startswith(("http://", "https://")) and url not in seen:
            seen[url] = Outline(url, title)
    return list(seen.values())


class OpmlError(ValueError):
    """The document is not OPML storywatch can read."""


def read_opml(document: bytes) -> list[Outline]:
    """Every outline with an `xmlUrl`, nested folders included, in document order. A URL
    listed twice is kept twice: the importer reports the repeat rather than lose it
    silently."""
    try:
        root = ET.fromstring(document)  # noqa: S314 - see the module docstring
    except ET.ParseError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from exc
    if root.tag.lower() != "opml":
        raise OpmlError(f"the root element is <{root.tag}>, not <opml>")
    found: list[Outline] = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            title = outline.get("title") or outline.get("text") or None
            found.append(Outline(url, title.strip() if title else None))
    return found


def write_opml(outlines: list[Outline], title: str = "storywatch feeds") -> str:
    """OPML 2.0 with one `type="rss"` outline per feed."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{_text(title)}</title></head>",
        "  <body>",
    ]
    for outline in outlines:
        # What XML cannot carry at all is dropped: one control character in a feed's
        # title would make the whole export unreadable.
        name = without_controls(outline.title or outline.url)
        lines.append(
            f'    <outline type="rss" text={quoteattr(name)} title={quoteattr(name)} '
            f"xmlUrl={quoteattr(without_controls(outline.url))}/>"
        )
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _text(value: str) -> str:
    return without_controls(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
