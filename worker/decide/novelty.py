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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from worker.decide.knowledge import KnowledgeBase
from worker.models import Novelty
from worker.stories.cleaning import is_furniture_sentence, source_names, without_dateline
from worker.text.specifics import informative_number, sentence_features
from worker.text.terms import split_sentences, term_weight, tokenize


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
    # New specifics (figures, rare names) a sentence needs to be a new claim by them
    # alone: 1, raised per story by "not new" feedback (Tracker.not_new).
    min_specifics: int = 1


@dataclass(frozen=True, slots=True)
class SentenceNovelty:
    sentence: str
    coverage: float
    new_specifics: tuple[str, ...]
    new_weight: float
    novel: bool
    quotable: bool  # long enough and not furniture: a sentence an alert may quote


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
    # The terms as the story spells them, weighed once for coverage and unseen weight.
    weights = knowledge.weighed(features.terms)
    coverage = knowledge.coverage_of(weights)
    # Specifics the story has never seen: figures, and rare words of names. Dates alone do
    # not count: every rehash carries its own publication date.
    new_numbers = {
        n for n in features.numbers if informative_number(n) and n not in knowledge.specifics
    }
    new_names = {
        part
        for entity in _whole_names(features.entities)
        for part in _new_name_parts(knowledge, entity, config)
    }
    if new_names:
        # An outlet cited as the source is not a new name of the story (asked only when
        # there is a new name: finding the sources is a slow pattern).
        new_names -= source_names(sentence)
    new_specifics = tuple(sorted(new_numbers | new_names))
    # Not `set - dict.keys()`: that walks every key the story knows, once per sentence.
    known = knowledge.terms
    new_weight = math.fsum(w for t, w in weights.items() if t not in known)
    quotable = len(sentence.split()) >= config.min_words and not is_furniture_sentence(sentence)
    novel = (
        coverage < config.covered
        and quotable
        and (len(new_specifics) >= config.min_specifics or new_weight >= config.min_novel_weight)
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
    # Positions and memberships by value, looked up once (as list.index and `in` would
    # find them, without their cost: each compares every field of every sentence).
    first: dict[SentenceNovelty, int] = {}
    for position, item in enumerate(assessed):
        first.setdefault(item, position)
    in_lead, in_lead_all = set(lead), set(lead_all)
    ranked = sorted(
        (a for a in assessed if a.novel),
        key=lambda a: (
            a not in in_lead,
            a is assessed[0] and has_title,
            first[a] if a in in_lead else 0,
            -len(a.new_specifics),
            a.coverage,
        ),
    )
    new_facts = _quotes([a.sentence for a in ranked], headline) if is_new else ()
    quotable = sorted(
        (a for a in assessed if a.quotable),
        key=lambda a: (a not in in_lead_all, a is assessed[0] and has_title, first[a]),
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
        lead=tuple(a.sentence for a in lead_all if a.quotable),
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
