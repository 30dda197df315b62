"""The corpus folder as documents: loose `*.txt` files, then one folder per story.

Reads the filesystem and nothing else; what a document says is `worker.stories.documents`.
"""

from __future__ import annotations

from pathlib import Path

from worker.errors import ConfigError
from worker.models import ID_PATTERN, CorpusDocument
from worker.stories.documents import corpus_document
from worker.text.encoding import decode_utf8

# A corpus file is text: more undecodable bytes than this share of it means it is not.
MAX_INVALID_SHARE = 0.01


def read_corpus(directory: Path) -> list[CorpusDocument]:
    """The corpus documents (`*.txt`, UTF-8) in name order: loose files, then one folder
    per story (`corpus/<story>/*.txt`, the folder name being the story's id).

    Raises ConfigError listing every bad `Date:` line and folder name at once.
    """
    problems: list[str] = []
    documents: list[CorpusDocument] = []
    files: list[tuple[Path, str | None]] = [(p, None) for p in sorted(directory.glob("*.txt"))]
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        if folder.name.startswith("."):
            continue  # .git, editor folders
        if not ID_PATTERN.match(folder.name):
            problems.append(
                f"{folder}: a story folder's name is the story's id: use lower-case letters,"
                " digits, '.', '_' or '-' (at most 64)"
            )
            continue
        files.extend((path, folder.name) for path in sorted(folder.glob("*.txt")))
    for path, story in files:
        name = path.name if story is None else f"{story}/{path.name}"
        try:
            raw = _corpus_text(path.read_bytes())
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            continue
        try:
            documents.append(corpus_document(name, raw, story))
        except ValueError as exc:
            problems.append(f"{directory}/{exc}")
    if problems:
        raise ConfigError(problems)
    return documents


def _corpus_text(raw: bytes) -> str:
    """A corpus file's text: UTF-8, where a stray bad byte is replaced; raises ValueError
    for a file that is empty or not text (a binary file would build garbage stories)."""
    if b"\0" in raw:
        raise ValueError("not a text file (it holds NUL bytes); corpus documents are UTF-8 text")
    text, invalid = decode_utf8(raw)
    if invalid > MAX_INVALID_SHARE * max(len(text), 1):
        raise ValueError(f"not UTF-8 text ({invalid} undecodable bytes); save it as UTF-8")
    if not any(character.isalpha() for character in text):
        raise ValueError("holds no text; write the article's text into it, or remove it")
    return text
