"""Bytes that should be UTF-8, read as text without losing the rest to a stray byte."""

from __future__ import annotations


def decode_utf8(raw: bytes) -> tuple[str, int]:
    """The text, with each undecodable byte sequence as U+FFFD, and how many there were
    (a U+FFFD the bytes themselves spell is text, not counted)."""
    text = raw.decode("utf-8", errors="replace")
    return text, text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
