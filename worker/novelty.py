"""Novelty: does a matched article report a new development of its story?

What this module is for: comparing an article's sentences with what the story already
knows (seed facts plus every accepted article) and saying whether something new is
reported, quoting the 1 to 3 sentences that carry it. New numbers, names, dates and
claims count; paraphrases, background paragraphs and syndicated copies do not.

How (numbered because the order matters):
1. Each sentence is compared with every known sentence sharing a term (an inverted
   index keeps this cheap): its *coverage* is the largest share of its rarity-weighted
   terms found in one known sentence. Sentence-level max-similarity, not a bag over the
   whole story, so that a rehash assembled from many known sentences is still covered.
2. A sentence is *novel* when its coverage is low and it brings specifics the story has
   never seen (a number, a date, a name) or enough rare unseen terms.
3. News puts the development first (inverted pyramid): the article is new when its
   title or lead carries a novel sentence, or when novel sentences dominate the body.

What it must not do: decide topic (the matcher does), change knowledge while assessing
(the tracker calls `KnowledgeBase.add` only on learn), or do I/O.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from worker.cleaning import is_furniture_sentence, source_names, without_dateline
from worker.models import Novelty
from worker.specifics import SentenceFeatures, sentence_features
from worker.text import split_sentences, term_weight, tokenize

# Terms under this background weight ("people", "government") are not indexed: they would
# make every lookup scan most known sentences while adding little to coverage.
_INDEXED_WEIGHT = 1.5
# Coverage under this is only a lower bound (see `KnowledgeBase.coverage`); it is well
# below every threshold the decision uses.
_COVERAGE_FLOOR = 0.4
# Each term remembers the latest sentences that carry it, not all of them: a story that
# learned thousands of articles would otherwise make every lookup scan thousands of
# sentences. Copies and rehashes repeat recent sentences, and rare words (names,
# figures) have short lists that the cap never cuts.
_POSTINGS_CAP = 256
# Spelling variants are only looked for among rare words of five letters or more.
_VARIANT_MIN_LENGTH = 5
_VARIANT_WEIGHT = 3.0


def _one_edit_apart(a: str, b: str) -> bool:
    """True for one substitution, insertion or deletion ("zelenskiy"/"zelensky")."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _deletions(word: str) -> set[str]:
    """The word with one letter left out, each way: two words one edit apart share one
    of these or one is the other's (SymSpell's index, for one edit)."""
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass(frozen=True, slots=True)
class NoveltyConfig:
    """Novelty knobs.

    - `covered`: coverage at or above which a sentence is known (a paraphrase or a copy).
    - `min_novel_weight`: rarity weight of unseen terms that alone makes a claim new.
    - `lead_sentences`: sentences after the title that count as the lead.
    - `body_share`: share of novel sentences in the body that makes an article new even
      when its lead is known (a follow-up that starts with background).
    - `duplicate`: coverage above which a learned sentence is not stored again.
    """

    covered: float = 0.45
    min_novel_weight: float = 20.0
    lead_sentences: int = 3
    body_share: float = 0.5
    duplicate: float = 0.9
    min_words: int = 6
    rare_name_weight: float = 3.5


@dataclass(slots=True)
class KnowledgeBase:
    """The known facts of one story, indexed. Mutable: only `add` changes it."""

    sentences: list[SentenceFeatures] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    index: dict[str, deque[int]] = field(
        default_factory=lambda: defaultdict(lambda: deque(maxlen=_POSTINGS_CAP))
    )
    specifics: Counter[str] = field(default_factory=Counter)
    terms: Counter[str] = field(default_factory=Counter)
    # Rare words filed under themselves and under each of their one-letter deletions, so
    # the spelling variants of a word are a few lookups away however much the story knows.
    # Nearly every key files one word: a plain string, and a set only in `shared`, keeps
    # the index from outweighing the rest of what the story knows.
    variants: dict[str, str] = field(default_factory=dict)
    shared: dict[str, set[str]] = field(default_factory=dict)
    # The rare words the story has seen before each rare last word of a name ("moammar"
    # before "gaddafi"): a new one is a new person (Saif Gaddafi), not a first name.
    given_names: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def knows_name(self, word: str) -> bool:
        """The word, or a spelling variant of it (one edit apart, five letters or more)."""
        return self.known_spelling(word) is not None

    def known_spelling(self, word: str) -> str | None:
        """The word as the story spells it: itself, a known spelling variant, or None."""
        if word in self.terms:
            return word
        if len(word) < _VARIANT_MIN_LENGTH or not word.isalpha():
            return None  # "S-300" and "S-400", "COP28" and "COP29" are different things
        # min: sets iterate in a per-process order, and the choice must not vary.
        return min(
            (
                known
                for key in (word, *_deletions(word))
                for known in self._filed_under(key)
                if _one_edit_apart(word, known)
            ),
            default=None,
        )

    def _filed_under(self, key: str) -> Collection[str]:
        if key in self.shared:
            return self.shared[key]
        word = self.variants.get(key)
        return (word,) if word is not None else ()

    def _file_variant(self, term: str) -> None:
        for key in (term, *_deletions(term)):
            filed = self.variants.setdefault(key, term)
            if filed != term:
                self.shared.setdefault(key, {filed}).add(term)

    def spelled_as_known(self, terms: frozenset[str]) -> frozenset[str]:
        """The terms with rare words respelled as the story spells them ("Zelenskiy" as
        "Zelensky"), so a transliteration still overlaps the sentence that reported it."""
        return frozenset(
            (self.known_spelling(t) or t) if term_weight(t) >= _VARIANT_WEIGHT else t for t in terms
        )

    def coverage(self, features: SentenceFeatures) -> float:
        """Largest share of the sentence's term weight found in one known sentence.

        Exact above `_COVERAGE_FLOOR`, a lower bound below it (prefix filtering): posting
        lists are read shortest first, and once the terms not yet read weigh less than the
        floor, a known sentence seen in none of the lists read so far cannot reach the
        floor. The longest lists (the story's most repeated words) are thus rarely read,
        which keeps the cost flat as the story learns thousands of sentences.
        """
        weights = {t: term_weight(t) for t in self.spelled_as_known(features.terms)}
        # fsum: terms come in set order, which differs between processes; a plain sum
        # could differ in its last bit and flip a decision taken right at a threshold.
        total = math.fsum(weights.values())
        if total == 0.0:
            return 1.0
        indexed = sorted(
            (t for t, w in weights.items() if w >= _INDEXED_WEIGHT and t in self.index),
            key=lambda t: (len(self.index[t]), t),
        )
        remaining = sum(weights[t] for t in indexed)
        overlap: dict[int, float] = defaultdict(float)
        read = 0
        for term in indexed:
            if remaining < _COVERAGE_FLOOR * total:
                break
            weight = weights[term]
            for number in self.index[term]:
                overlap[number] += weight
            remaining -= weight
            read += 1
        unread = frozenset(indexed[read:])
        best = max(overlap.values(), default=0.0)
        if unread:
            # Only sentences whose partial overlap plus every unread term could beat the
            # best so far are completed: usually a handful.
            bar = max(best, _COVERAGE_FLOOR * total) - remaining
            for number, partial in overlap.items():
                if partial > bar:
                    shared = unread & self.sentences[number].terms
                    completed = partial + math.fsum(weights[t] for t in shared)
                    if completed > best:
                        best = completed
                        bar = max(bar, best - remaining)
        return best / total

    def add(self, sentence: str, config: NoveltyConfig) -> bool:
        """Learn a sentence; False when it adds nothing (a copy of a known one)."""
        features = sentence_features(sentence)
        if not features.terms or (self.sentences and self.coverage(features) >= config.duplicate):
            return False
        number = len(self.sentences)
        self.sentences.append(features)
        for term in features.terms:
            if term_weight(term) >= _INDEXED_WEIGHT:
                self.index[term].append(number)
        self.specifics.update(features.specifics)
        self.terms.update(features.terms)
        for entity in features.entities:
            *before, last = entity.split()
            if before and term_weight(last) >= config.rare_name_weight:
                rare = {w for w in before if term_weight(w) >= config.rare_name_weight}
                self.given_names[last].update(rare)
        for term in features.terms:
            if (
                len(term) >= _VARIANT_MIN_LENGTH
                and term.isalpha()
                and term_weight(term) >= _VARIANT_WEIGHT
            ):
                self._file_variant(term)
        return True


@dataclass(frozen=True, slots=True)
class SentenceNovelty:
    sentence: str
    coverage: float
    new_specifics: tuple[str, ...]
    new_weight: float
    novel: bool
    quotable: bool  # long enough and not furniture: a sentence an alert may quote


def _informative_number(number: str) -> bool:
    """Money, percentages and figures of 10 or more; "two sources" or "one child" is prose."""
    if number.startswith("$") or number.endswith("%"):
        return True
    try:
        return float(number) >= 10
    except ValueError:
        return True


def _new_name_parts(knowledge: KnowledgeBase, entity: str, config: NoveltyConfig) -> list[str]:
    """Rare words of a name the story has never seen, spelling variants aside.

    1. A name whose last word is a known rare word (a surname, a place) is a known name:
       "Volodymyr Zelenskiy" adds nothing to a story that knows Zelensky, unless the
       story already knows another first name before that surname: "Saif Gaddafi" is a
       new person to a story that knows Moammar Gaddafi. A common last word does not
       vouch for the rest: "Mozdok Airport" is news to a story that knows "airport".
    2. A word is known when the story knows it or a spelling variant of it (Zelenskiy and
       Zelensky, Shahid and Shahed): transliterations are not news.
    3. Only rare words count: headline Title Case turns common words into "names".
    """
    parts = entity.split()
    last = parts[-1]
    surname = knowledge.known_spelling(last)
    if surname is not None and term_weight(last) >= config.rare_name_weight:
        given = knowledge.given_names.get(surname, set())
        return [
            part
            for part in parts[:-1]
            if given
            and term_weight(part) >= config.rare_name_weight
            and not knowledge.knows_name(part)
        ]
    return [
        part
        for part in parts
        if term_weight(part) >= config.rare_name_weight and not knowledge.knows_name(part)
    ]


def _whole_names(entities: frozenset[str]) -> list[str]:
    """The sentence's names without the single words it also lists for matching.

    Entity extraction adds the parts of "Volodymyr Zelenskiy" as names of their own, so a
    later "Zelenskiy" meets it; judged alone, "Volodymyr" would be a new name of a known
    man. The whole name is judged instead (see `_new_name_parts`).
    """
    inside = {word for entity in entities if " " in entity for word in entity.split()}
    return sorted(e for e in entities if " " in e or e not in inside)


def assess_sentence(
    knowledge: KnowledgeBase, sentence: str, config: NoveltyConfig
) -> SentenceNovelty:
    features = sentence_features(sentence)
    coverage = knowledge.coverage(features)
    # Specifics the story has never seen: figures, and rare words of names. Dates alone do
    # not count: every rehash carries its own publication date.
    new_numbers = {
        n for n in features.numbers if _informative_number(n) and n not in knowledge.specifics
    }
    sources = source_names(sentence)
    new_names = {
        part
        for entity in _whole_names(features.entities)
        for part in _new_name_parts(knowledge, entity, config)
        if part not in sources
    }
    new_specifics = tuple(sorted(new_numbers | new_names))
    # Not `set - dict.keys()`: that walks every key the story knows, once per sentence.
    known = knowledge.terms
    unseen = [t for t in knowledge.spelled_as_known(features.terms) if t not in known]
    new_weight = math.fsum(term_weight(t) for t in unseen)
    quotable = len(sentence.split()) >= config.min_words and not is_furniture_sentence(sentence)
    novel = (
        coverage < config.covered
        and quotable
        and (bool(new_specifics) or new_weight >= config.min_novel_weight)
    )
    return SentenceNovelty(sentence, coverage, new_specifics, new_weight, novel, quotable)


def article_sentences(title: str | None, text: str) -> list[str]:
    """Title first, then the body's sentences, without repeating a title the body opens with."""
    sentences = split_sentences(text)
    if title and title.strip():
        title = " ".join(title.split())
        if sentences and sentences[0].startswith(title):
            rest = sentences[0][len(title) :].strip()
            sentences = ([rest] if rest else []) + sentences[1:]
        sentences = [title, *sentences]
    return sentences


def _split_lead(
    assessed: Sequence[SentenceNovelty], has_title: bool, config: NoveltyConfig
) -> tuple[list[SentenceNovelty], list[SentenceNovelty]]:
    """(lead, body): the title and the first `lead_sentences` substantive sentences.

    Fragments shorter than `min_words` ("Updated: 2 hours ago.", "Share this story.") are
    site furniture the extractor kept, not the lead: counted as lead, they would push the
    sentences that carry the development into the body.
    """
    slots = config.lead_sentences + (1 if has_title else 0)
    lead: list[SentenceNovelty] = []
    body: list[SentenceNovelty] = []
    for index, item in enumerate(assessed):
        is_title = index == 0 and has_title
        substantive = len(item.sentence.split()) >= config.min_words
        if len(lead) < slots and (is_title or substantive):
            lead.append(item)
        else:
            body.append(item)
    return lead, body


def assess(
    knowledge: KnowledgeBase,
    title: str | None,
    text: str,
    config: NoveltyConfig,
) -> Novelty:
    """Is this (matched) article a new development of the story `knowledge` describes?"""
    sentences = article_sentences(title, text)
    assessed = [assess_sentence(knowledge, s, config) for s in sentences]
    lead_all, body = _split_lead(assessed, bool(title and title.strip()), config)
    lead = [a for a in lead_all if a.novel]
    body_novel = [a for a in body if a.novel]
    body_share = len(body_novel) / len(body) if body else 0.0
    is_new = bool(lead) or (len(body_novel) >= 2 and body_share >= config.body_share)
    has_title = bool(title and title.strip())
    headline = " ".join(title.split()) if title and has_title else None
    # The lead's sentences in reading order (the first says what changed), then the body's
    # by what they bring; the headline only where no sentence says the same (_quotes).
    ranked = sorted(
        (a for a in assessed if a.novel),
        key=lambda a: (
            a not in lead,
            a is assessed[0] and has_title,
            assessed.index(a) if a in lead else 0,
            -len(a.new_specifics),
            a.coverage,
        ),
    )
    new_facts = _quotes([a.sentence for a in ranked], headline) if is_new else ()
    quotable = sorted(
        (a for a in assessed if a.quotable),
        key=lambda a: (a not in lead_all, a is assessed[0] and has_title, assessed.index(a)),
    )
    salient = new_facts or _quotes([a.sentence for a in quotable], headline)
    mean_coverage = sum(a.coverage for a in assessed) / len(assessed) if assessed else 1.0
    reasons = [f"lead novel sentences: {len(lead)}", f"body novel: {len(body_novel)}/{len(body)}"]
    specifics = sorted({s for a in ranked[:3] for s in a.new_specifics})
    if specifics and is_new:
        reasons.append("new specifics: " + ", ".join(specifics[:8]))
    return Novelty(
        is_new=is_new,
        new_facts=new_facts,
        score=round(1.0 - mean_coverage, 4),
        reasons=tuple(reasons),
        salient=salient,
        lead_coverage=min((a.coverage for a in lead_all if a.quotable), default=1.0),
    )


def _words(sentence: str) -> frozenset[str]:
    return frozenset(word.casefold() for word in tokenize(sentence))


def _quotes(sentences: Sequence[str], title: str | None, limit: int = 3) -> tuple[str, ...]:
    """Up to `limit` sentences an alert quotes, best first: without a wire dateline, none
    twice (a page that repeats its lead, a headline in capitals), and the headline only
    when no other candidate already says it (it is then itself the new fact)."""
    chosen: list[str] = []
    seen: list[frozenset[str]] = []
    others = [_words(s) for s in sentences if s != title]
    for sentence in sentences:
        words = _words(sentence)
        if not words or any(_overlap(words, known) >= 0.8 for known in seen):
            continue
        if sentence == title and any(_overlap(words, other) >= 0.5 for other in others):
            continue
        chosen.append(without_dateline(sentence))
        seen.append(words)
        if len(chosen) == limit:
            break
    return tuple(chosen)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the smaller word set found in the other."""
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def learn_sentences(
    knowledge: KnowledgeBase, sentences: Iterable[str], config: NoveltyConfig
) -> tuple[str, ...]:
    """Add sentences to the knowledge; returns those actually stored, in order."""
    return tuple(s for s in sentences if knowledge.add(s, config))


def known_from(facts: Sequence[str], config: NoveltyConfig) -> KnowledgeBase:
    knowledge = KnowledgeBase()
    learn_sentences(knowledge, facts, config)
    return knowledge
