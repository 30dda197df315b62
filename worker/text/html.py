"""HTML fragments to plain text: feed titles and summaries, and a page's fallback summary.

Pure and bounded: every pattern reads the text once, whatever markup a hostile feed sends.
"""

from __future__ import annotations

import html
import re

# Hidden blocks are cut with one scan: a lazy `<script.*?</script>` pattern restarts at
# every unclosed opener, so a summary of many `<script` or `<!--` would take hours.
_HIDDEN_OPEN = re.compile(r"<(script|style|template)(?=[\s/>])|<!--", re.I)  # not <style-x>
_HIDDEN_CLOSE = {
    name: re.compile(rf"</{name}\s*>", re.I) for name in ("script", "style", "template")
}
_COMMENT_CLOSE = re.compile(r"-->")
# `[^<>]` rather than `[^>]`: a run of `<a` with no `>` would make every match attempt
# read to the end of the text.
_BREAKS = re.compile(r"<\s*(br|/?p|/?div|/?li|/?h[1-6]|/?tr|/?blockquote)\b[^<>]*>", re.I)
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_SPACE = re.compile(r"\s+")
# What XML 1.0 cannot carry (C0 controls but tab and line breaks, DEL, lone surrogates,
# U+FFFE/U+FFFF): a JSON Feed or an entity like `&#1;` can hand them over, and written
# into the desk's Atom feeds or OPML they would make the whole document unreadable.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def without_controls(value: str) -> str:
    """The text with every character XML 1.0 cannot carry replaced by a space."""
    return _CONTROL.sub(" ", value)


def _drop_hidden(value: str) -> str:
    """The text without script, style and template blocks and comments. An unclosed one
    hides the rest of the text, as it does in a browser."""
    kept: list[str] = []
    position = 0
    while (opened := _HIDDEN_OPEN.search(value, position)) is not None:
        kept.append(value[position : opened.start()])
        name = opened.group(1)
        closer = _HIDDEN_CLOSE[name.lower()] if name else _COMMENT_CLOSE
        closed = closer.search(value, opened.end())
        if closed is None:
            return " ".join(kept)
        position = closed.end()
    kept.append(value[position:])
    return " ".join(kept)


def html_to_text(value: str | None) -> str | None:
    """Plain text from an HTML fragment: tags dropped, entities decoded, whitespace collapsed.

    Block-level tags become spaces so "<p>a</p><p>b</p>" reads "a b", not "ab".
    Returns None for empty results.
    """
    if not value:
        return None
    text = _BREAKS.sub(" ", _drop_hidden(value))
    text = _TAG.sub("", text)
    text = _SPACE.sub(" ", without_controls(html.unescape(text))).strip()
    return text or None
