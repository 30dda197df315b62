"""What one story knows: its fact sentences, indexed for the novelty questions.

What this module is for: `KnowledgeBase`, the known sentences of one story with an
inverted index (coverage: the largest share of a sentence's weight found in one known
sentence), the specifics and terms its sentences hold, and its spelling variants and given names
(Zelenskiy is Zelensky; a new first name before a known surname is a new person).

What it must not do: decide novelty (`worker.decide.novelty` does), or do I/O.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from worker.decide.spelling import SpellingIndex
from worker.text.specifics import SentenceFeatures, informative_number, sentence_features
from worker.text.terms import term_weight

# Terms under this background weight ("people", "government") are not indexed: they would
# make every lookup scan most known sentences while adding little to coverage.
_INDEXED_WEIGHT = 1.5
# Coverage under this is only a lower bound (see `KnowledgeBase.coverage`); it is well
# below every threshold the decision uses.
_COVERAGE_FLOOR = 0.4
# How far under a threshold the coverage question's floor is set: more than the rounding
# of a sum of term weights, far less than any difference a decision cares about.
_FLOOR_MARGIN = 1e-9
# Each term remembers the latest sentences that carry it, not all of them: a story that
# learned thousands of articles would otherwise make every lookup scan thousands of
# sentences. Copies and rehashes repeat recent sentences, and rare words (names,
# figures) have short lists that the cap never cuts. A list is a C array of sentence
# numbers (4 bytes each, where a Python int in a deque costs 36) and keeps every sentence:
# overlaps are summed from the last `_POSTINGS_CAP` entries, and the whole list answers
# only "does this sentence hold the term" (`KnowledgeBase._completed`).
_POSTINGS_CAP = 256
# Fewer candidates than this are completed in a Python loop (see `_completed`).
_FEW_CANDIDATES = 8
# Spellings remembered at most (see `KnowledgeBase._spellings`): a few articles' words.
_SPELLINGS_KEPT = 4096
# Spelling variants are only looked for among rare words of five letters or more.
_VARIANT_MIN_LENGTH = 5
_VARIANT_WEIGHT = 3.0


def _picked(values: list[float], code: int) -> list[float]:
    """The values at the set bits of `code` (bit i: values[i]), lowest bit first."""
    picked = []
    while code:
        low = code & -code
        picked.append(values[low.bit_length() - 1])
        code ^= low
    return picked


class Learning(Protocol):
    """The knobs `KnowledgeBase.add` reads (NoveltyConfig has them)."""

    @property
    def duplicate(self) -> float: ...
    @property
    def rare_name_weight(self) -> float: ...


@dataclass(slots=True)
class KnowledgeBase:
    """The known facts of one story, indexed. Mutable: only `add` (and `fold`, which
    forgets sentences and rebuilds the rest) changes it; the spelling index and its memo
    rely on that (a word in `terms` was filed under `variants` when it was first seen)."""

    # Each known sentence as the only thing asked of it: its terms, sorted and interned.
    # A tuple of shared strings is a fifth of a frozenset's size and a story keeps up to
    # tens of thousands of them (with its text and specifics, it was 1.7 KB a sentence).
    sentences: list[tuple[str, ...]] = field(default_factory=list)
    # Each known sentence's specifics (figures and whole names), sorted and interned, in the
    # same order: what `fold` rebuilds the story's vocabulary from.
    sentence_specifics: list[tuple[str, ...]] = field(default_factory=list)
    # The first `pinned` sentences are the user's corpus: `fold` never drops them.
    pinned: int = 0
    index: dict[str, array[int]] = field(default_factory=lambda: defaultdict(lambda: array("i")))
    specifics: Counter[str] = field(default_factory=Counter)
    terms: Counter[str] = field(default_factory=Counter)
    # Rare words by their spelling variants (see worker.decide.spelling).
    variants: SpellingIndex = field(default_factory=SpellingIndex)
    # The rare words the story knows before each rare last word of a name ("moammar"
    # before "gaddafi"): a new one is a new person (Saif Gaddafi), not a first name.
    given_names: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # `known_spelling` of words the story does not know, remembered until a new word is
    # filed under `variants` (the only change that can alter one): a sentence's rare words
    # are asked about three times (coverage, unseen weight, the copy test when learned),
    # and an article repeats its names. Bounded by `_SPELLINGS_KEPT`.
    _spellings: dict[str, str | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def knows_name(self, word: str) -> bool:
        """The word, or a spelling variant of it (one edit apart, five letters or more)."""
        return self.known_spelling(word) is not None

    def known_spelling(self, word: str) -> str | None:
        """The word as the story spells it: itself, a known spelling variant, or None."""
        if word in self.terms:
            return word
        if len(word) < _VARIANT_MIN_LENGTH or not word.isalpha():
            return None  # "S-300" and "S-400", "COP28" and "COP29" are different things
        if word in self._spellings:
            return self._spellings[word]
        if len(self._spellings) >= _SPELLINGS_KEPT:
            self._spellings.clear()
        found = self.variants.closest(word)
        self._spellings[word] = found
        return found

    def _file_variant(self, term: str) -> None:
        self._spellings.clear()
        self.variants.file(term)

    def spelled_as_known(self, terms: Iterable[str]) -> frozenset[str]:
        """The terms with rare words respelled as the story spells them ("Zelenskiy" as
        "Zelensky"), so a transliteration still overlaps the sentence that reported it."""
        return frozenset(self.weighed(terms))

    def coverage(self, features: SentenceFeatures, floor: float = _COVERAGE_FLOOR) -> float:
        """Largest share of the sentence's term weight found in one known sentence.

        Exact above `floor`, a lower bound below it (prefix filtering): posting
        lists are read shortest first, and once the terms not yet read weigh less than the
        floor, a known sentence seen in none of the lists read so far cannot reach the
        floor. The longest lists (the story's most repeated words) are thus rarely read,
        which keeps the cost flat as the story learns thousands of sentences. A caller
        that only asks "at least x?" passes x: the higher the floor, the fewer lists read.
        """
        return self.coverage_of(self.weighed(features.terms), floor)

    def weighed(self, terms: Iterable[str]) -> dict[str, float]:
        """The terms with rare words respelled as the story spells them, each with its
        weight (the weight of the spelling kept)."""
        weights: dict[str, float] = {}
        for term in terms:
            weight = term_weight(term)
            spelled = self.known_spelling(term) if weight >= _VARIANT_WEIGHT else None
            if spelled is None or spelled == term:
                weights[term] = weight
            else:
                weights[spelled] = term_weight(spelled)
        return weights

    def coverage_of(self, weights: dict[str, float], floor: float = _COVERAGE_FLOOR) -> float:
        """`coverage` of a sentence's terms as `weighed` gives them."""
        # fsum: terms come in set order, which differs between processes; a plain sum
        # could differ in its last bit and flip a decision taken right at a threshold.
        total = math.fsum(weights.values())
        if total == 0.0:
            return 1.0
        index = self.index
        # Shortest list first, by name among equals: (length, term) pairs sort in C.
        indexed = [
            t
            for _, t in sorted(
                (min(len(index[t]), _POSTINGS_CAP), t)
                for t, w in weights.items()
                if w >= _INDEXED_WEIGHT and t in index
            )
        ]
        remaining = sum(weights[t] for t in indexed)
        read = 0
        for term in indexed:
            if remaining < floor * total:
                break
            remaining -= weights[term]
            read += 1
        # The lists read are summed per sentence in C: np.bincount adds the weights in
        # the order given (term by term, as a Python loop would), so each partial overlap
        # is the same double to the last bit.
        postings = array("i")
        lengths = []
        for term in indexed[:read]:
            kept = self.index[term][-_POSTINGS_CAP:]
            postings.extend(kept)
            lengths.append(len(kept))
        if not postings:
            return 0.0
        numbers = np.frombuffer(postings, dtype=np.int32)
        term_weights = np.repeat(np.array([weights[t] for t in indexed[:read]]), lengths)
        # (float64 already: the astype only tells the type checker so)
        overlap = np.bincount(numbers, weights=term_weights).astype(np.float64, copy=False)
        best = float(overlap.max())
        unread = indexed[read:]
        if unread:
            # Only sentences whose partial overlap plus every unread term could beat the
            # best so far are completed, with the unread terms they hold.
            bar = max(best, floor * total) - remaining
            candidates = np.flatnonzero(overlap > bar)
            if candidates.size:
                best = max(best, self._completed(candidates, overlap[candidates], unread, weights))
        return best / total

    def _completed(
        self,
        candidates: npt.NDArray[np.intp],
        partials: npt.NDArray[np.float64],
        unread: list[str],
        weights: dict[str, float],
    ) -> float:
        """The largest partial overlap plus the weight of the unread terms its sentence
        holds. Membership comes from each term's whole posting list (sorted, since
        sentences are numbered as they are learned), looked up in C; the added weight is
        an fsum per combination of terms held, so every sum is the double a sentence-by-
        sentence loop over its term set computes. The largest is taken over them all,
        where the loop (before numpy) skipped candidates as its cut-off rose: the two
        agree except when two sentences tie within one rounding unit, where the loop's
        cut-off, built from a running sum, could skip the larger by one unit (about one
        call in 12,000 on invented weights; no decision on any labelled set changed).
        """
        if candidates.size <= _FEW_CANDIDATES or len(unread) > 62:
            # A few: a Python loop is cheaper than numpy's calls. Over 62 terms: a
            # combination would not fit one int64's bits.
            held_terms = frozenset(unread)
            numbers: list[int] = candidates.tolist()
            known: list[float] = partials.tolist()
            return max(
                partial
                + math.fsum(weights[t] for t in held_terms.intersection(self.sentences[number]))
                for number, partial in zip(numbers, known, strict=True)
            )
        held = np.zeros(candidates.size, dtype=np.int64)
        # In the lists' own type: searchsorted would otherwise copy each whole list.
        sought = candidates.astype(np.int32)
        for bit, term in enumerate(unread):
            # A view, not a copy: nothing appends to the list while the view lives.
            postings = np.frombuffer(self.index[term], dtype=np.int32)
            found = postings.take(postings.searchsorted(sought), mode="clip")
            held[found == sought] |= 1 << bit
        codes = held.tolist()
        unread_weights = [weights[t] for t in unread]
        added = {code: math.fsum(_picked(unread_weights, code)) for code in set(codes)}
        return float((partials + np.array([added[code] for code in codes])).max())

    def retold(self, features: SentenceFeatures, candidates: int = 20) -> float:
        """Share of the sentence's term weight that two known sentences together hold.

        A retelling merges facts: "An Embraer crashed three kilometres from Aktau while
        attempting an emergency landing" is half one known sentence and half another,
        so `coverage` (one sentence) calls it new while the story knows all of it. Exact
        (every posting is read): for the few sentences the tracker asks about.
        """
        weights = self.weighed(features.terms)
        total = math.fsum(weights.values())
        if total == 0.0:
            return 1.0
        # Sorted: sets iterate in a per-process order, and a sum's last bit must not
        # depend on it (the result is compared with a threshold).
        overlap: dict[int, float] = defaultdict(float)
        for term, weight in sorted(weights.items()):
            if weight >= _INDEXED_WEIGHT:
                for number in self.index.get(term, array("i"))[-_POSTINGS_CAP:]:
                    overlap[number] += weight
        best = sorted(overlap, key=lambda n: (-overlap[n], n))[:candidates]
        if not best:
            return 0.0
        terms = frozenset(weights)
        held = [terms & self.spelled_as_known(self.sentences[n]) for n in best]

        def told(shared: frozenset[str]) -> float:
            return math.fsum(weights[t] for t in sorted(shared))

        pair = max(
            (told(a | b) for i, a in enumerate(held) for b in held[i + 1 :]),
            default=told(held[0]),
        )
        return pair / total

    def add(self, sentence: str, config: Learning) -> bool:
        """Learn a sentence; False when it adds nothing (a copy of a known one)."""
        features = sentence_features(sentence)
        # Only "at least `duplicate`?" is asked, so the prefix filter can stop that high:
        # just under it, since coverage is exact only above its floor, and a sentence with
        # nine of ten equally rare words (unseen words all weigh alike) is exactly at 0.9.
        duplicate = config.duplicate
        floor = duplicate - _FLOOR_MARGIN
        if not features.terms or (
            self.sentences and self.coverage(features, floor=floor) >= duplicate
        ):
            return False
        terms = tuple(sorted(sys.intern(t) for t in features.terms))
        # What novelty asks the story about besides its words: the figures it counts as
        # news, and whole names (a new given name before a known surname). Not dates,
        # small numbers or one-word names: nothing asks whether those are known.
        figures = filter(informative_number, features.numbers)
        names = (e for e in features.entities if " " in e)
        specifics = tuple(sorted(sys.intern(s) for s in (*figures, *names)))
        self._index_sentence(terms, specifics)
        self._remember(terms, specifics, config)
        return True

    def _index_sentence(self, terms: tuple[str, ...], specifics: tuple[str, ...]) -> None:
        number = len(self.sentences)
        self.sentences.append(terms)
        self.sentence_specifics.append(specifics)
        for term in terms:
            if term_weight(term) >= _INDEXED_WEIGHT:
                self.index[term].append(number)

    def _remember(
        self, terms: tuple[str, ...], specifics: tuple[str, ...], config: Learning
    ) -> None:
        """File a known sentence's words: terms, specifics, given names, spellings."""
        self.specifics.update(specifics)
        # A word the story knew is filed already: only new ones can change a spelling.
        unknown = [t for t in terms if t not in self.terms]
        self.terms.update(terms)
        for specific in specifics:
            *before, last = specific.split()
            if before and term_weight(last) >= config.rare_name_weight:
                rare = {w for w in before if term_weight(w) >= config.rare_name_weight}
                self.given_names[last].update(rare)
        for term in unknown:
            if (
                len(term) >= _VARIANT_MIN_LENGTH
                and term.isalpha()
                and term_weight(term) >= _VARIANT_WEIGHT
            ):
                self._file_variant(term)

    def fold(self, keep: int, config: Learning) -> int:
        """Forget learned sentences until at most `keep` remain; returns how many went.

        What goes is the oldest and least informative: walking from the oldest learned
        sentence, first those whose every rare word (a name, a place, a figure) another
        kept sentence also holds, then, if that was not enough, the oldest. The corpus
        (`pinned`) stays whole. The words the story knows (`terms`, `specifics`, its
        spellings and given names) are rebuilt from the sentences kept: kept as they were,
        they grew with every word ever seen and were most of what a bounded story still
        added to memory. A name that only folded sentences held is new again, as a
        rehash of a folded sentence can be, which is why the sentences that alone hold a
        rare word are the last to go.

        Deterministic (a function of the sentences in their order), so a restart that
        relearns the same facts folds at the same points and decides identically.
        """
        excess = len(self.sentences) - max(keep, self.pinned)
        if excess <= 0:
            return 0
        # What only one sentence holds is what folding it would forget: its rare words, and
        # its figures and names (the story's specifics are rebuilt from the kept sentences).
        # (A set: a name is often both a rare term and a specific of the same sentence.)
        rare_of = [
            {t for t in terms if term_weight(t) >= _VARIANT_WEIGHT}.union(specifics)
            for terms, specifics in zip(self.sentences, self.sentence_specifics, strict=True)
        ]
        holders: Counter[str] = Counter()
        for rare in rare_of:
            holders.update(rare)
        folded: set[int] = set()
        for number in range(self.pinned, len(self.sentences)):
            if len(folded) == excess:
                break
            rare = rare_of[number]
            if all(holders[t] > 1 for t in rare):
                folded.add(number)
                holders.subtract(rare)
        for number in range(self.pinned, len(self.sentences)):
            if len(folded) == excess:
                break
            folded.add(number)
        kept = [
            (terms, specifics)
            for n, (terms, specifics) in enumerate(
                zip(self.sentences, self.sentence_specifics, strict=True)
            )
            if n not in folded
        ]
        self.sentences = []
        self.sentence_specifics = []
        self.index.clear()
        self.terms.clear()
        self.specifics.clear()
        self.variants.clear()
        self.given_names.clear()
        self._spellings.clear()
        for terms, specifics in kept:
            self._index_sentence(terms, specifics)
            self._remember(terms, specifics, config)
        return excess
