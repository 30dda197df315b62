"""Spelling variants of a story's rare words: "Zelenskiy" is the "Zelensky" it knows.

What this module is for: `SpellingIndex`, the rare words a story knows filed under
themselves and under each of their one-letter deletions (SymSpell's index, for one edit),
so the known words one edit from any word are a few lookups away however much the story
knows.

What it must not do: decide which words are rare or worth filing
(`worker.decide.knowledge` does), or do I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field


def one_edit_apart(a: str, b: str) -> bool:
    """True for one substitution, insertion or deletion ("zelenskiy"/"zelensky")."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def deletions(word: str) -> set[str]:
    """The word with one letter left out, each way: two words one edit apart share one
    of these or one is the other's."""
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass(slots=True)
class SpellingIndex:
    """Known words by the keys a one-edit variant of them shares."""

    # Nearly every key files one word: a plain string, and a set only in `shared`, keeps
    # the index from outweighing the rest of what the story knows.
    variants: dict[str, str] = field(default_factory=dict)
    shared: dict[str, set[str]] = field(default_factory=dict)

    def file(self, word: str) -> None:
        for key in (word, *deletions(word)):
            filed = self.variants.setdefault(key, word)
            if filed != word:
                self.shared.setdefault(key, {filed}).add(word)

    def closest(self, word: str) -> str | None:
        """The known word one edit from `word` (or `word` itself), the first by name when
        several are: sets iterate in a per-process order, and the choice must not vary."""
        return min(
            (
                known
                for key in (word, *deletions(word))
                for known in self._filed_under(key)
                if one_edit_apart(word, known)
            ),
            default=None,
        )

    def clear(self) -> None:
        self.variants.clear()
        self.shared.clear()

    def _filed_under(self, key: str) -> Collection[str]:
        if key in self.shared:
            return self.shared[key]
        word = self.variants.get(key)
        return (word,) if word is not None else ()
