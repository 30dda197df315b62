"""Corpus documents -> tracked stories.

What this module is for: the use case "build the stories of a corpus": clean each
document (`worker.stories.cleaning`), group its paragraphs into stories
(`worker.stories.grouping`), give each story a stable readable id, a title, key terms and
its known facts, date it (`worker.stories.documents`), then apply the hand edits of
stories.toml (`worker.stories.rules`).

What it must not do: read files or the network (callers pass `CorpusDocument`s), or know
anything about a particular corpus. `clean_paragraphs`, `apply_rules`
and `CorpusConfig` are re-exported here because callers know them from this module.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from worker.models import CorpusDocument, Story, StoryRule
from worker.stories.cleaning import Paragraph, clean_paragraphs
from worker.stories.documents import corpus_document, dated
from worker.stories.grouping import CorpusConfig, blocks_of, group_paragraphs
from worker.stories.naming import choose_key_terms, slug, story_title, surface_forms
from worker.stories.rules import apply_rules
from worker.stories.term_space import TermSpace
from worker.text.terms import content_terms, split_sentences, tokenize, weighted_terms

__all__ = [
    "CorpusConfig",
    "apply_rules",
    "build_stories",
    "clean_paragraphs",
    "corpus_document",
    "story_from_documents",
]


def _facts(paragraphs: Sequence[Paragraph]) -> tuple[str, ...]:
    """The story's sentences in reading order, each once (compared by their words)."""
    seen: set[str] = set()
    facts: list[str] = []
    for paragraph in paragraphs:
        for sentence in split_sentences(paragraph.text):
            key = " ".join(tokenize(sentence))
            if len(key.split()) < 3 or key in seen:
                continue
            seen.add(key)
            facts.append(sentence)
    return tuple(facts)


def _stories(
    groups: Sequence[Sequence[Paragraph]],
    space: TermSpace,
    openings: Collection[tuple[str, int]],
    config: CorpusConfig,
) -> list[Story]:
    story_frequency: Counter[str] = Counter(
        term for group in groups for term in {t for p in group for t in content_terms(p.text)}
    )
    stories: list[Story] = []
    used: Counter[str] = Counter()
    for group in groups:
        stems = choose_key_terms(group, space, story_frequency, len(groups), config.key_terms)
        forms = surface_forms([p.text for p in group])
        key_terms = tuple(forms.get(term, term) for term in stems)
        story_id = slug(key_terms[:3])
        used[story_id] += 1
        if used[story_id] > 1:
            story_id = f"{story_id}-{used[story_id]}"
        stories.append(
            Story(
                id=story_id,
                title=story_title(group, space, openings),
                key_terms=key_terms,
                documents=tuple(dict.fromkeys(p.document for p in group)),
                facts=_facts(group),
            )
        )
    return stories


def _openings(documents: Sequence[Sequence[Paragraph]]) -> set[tuple[str, int]]:
    """Keys of the paragraphs that open a block (an article or an aggregator item)."""
    return {
        (block[0].document, block[0].index)
        for paragraphs in documents
        for block in blocks_of(paragraphs)
    }


# ---------------------------------------------------------------------------------------
# Use cases


def build_stories(
    documents: Sequence[CorpusDocument],
    rules: Sequence[StoryRule] = (),
    config: CorpusConfig | None = None,
    known_as_of: datetime | None = None,
) -> list[Story]:
    """The stories of a corpus, then the stories.toml rules.

    1. Documents of a story folder (`CorpusDocument.story`) are that story, as the user
       grouped them; the folder name is its id.
    2. Loose documents are grouped automatically (`worker.stories.grouping`).
    3. A story is known as of its documents' latest `Date:` day, unless stories.toml
       dates the whole corpus (`known_as_of`, top level) or the story (its table).

    Deterministic: the same documents (in any order) and rules give the same stories,
    ids and order. Raises ConfigError listing every rule that cannot be applied.
    """
    config = config or CorpusConfig()
    ordered = sorted(documents, key=lambda d: (d.name, d.text))
    folders: dict[str, list[CorpusDocument]] = defaultdict(list)
    for document in ordered:
        if document.story is not None:
            folders[document.story].append(document)
    stories = [
        story_from_documents(folder, members, config=config)
        for folder, members in sorted(folders.items())
    ]
    loose = [d for d in ordered if d.story is None]
    cleaned = [paragraphs for paragraphs in map(clean_paragraphs, loose) if paragraphs]
    if cleaned:
        grouping = group_paragraphs(cleaned, config)
        groups = [_centred_group(group) for group in grouping.groups]
        grouped = _stories(groups, grouping.space, grouping.openings, config)
        taken = {story.id for story in stories}
        stories.extend(_distinct(story, taken) for story in grouped)
    if known_as_of is None:
        stories = [dated(story, ordered) for story in stories]
    else:  # the user's date for the whole corpus beats what its files say
        stories = [replace(story, known_as_of=known_as_of) for story in stories]
    return apply_rules(stories, rules)


def _distinct(story: Story, taken: set[str]) -> Story:
    """A grouped story whose made-up id a folder already uses gets a numbered one."""
    story_id, number = story.id, 1
    while story_id in taken:
        number += 1
        story_id = f"{story.id}-{number}"
    taken.add(story_id)
    return story if story_id == story.id else replace(story, id=story_id)


def story_from_documents(
    story_id: str,
    documents: Sequence[CorpusDocument],
    *,
    title: str | None = None,
    config: CorpusConfig | None = None,
) -> Story:
    """One story from documents known to be about it (no grouping): cleaned the same way,
    with its key terms, facts and a title. For evaluation protocols and for corpora that
    come one folder per story."""
    config = config or CorpusConfig()
    cleaned = [clean_paragraphs(d) for d in sorted(documents, key=lambda d: (d.name, d.text))]
    cleaned = _centred([document for document in cleaned if document])
    paragraphs = [p for document in cleaned for p in document]
    space = TermSpace([block for document in cleaned for block in blocks_of(document)])
    (story,) = _stories([paragraphs], space, _openings(cleaned), config)
    story = dated(story, documents)
    return replace(story, id=story_id, title=title or story.title)


_CENTRE_MIN_DOCUMENTS = 3  # with fewer documents "common to several" means nothing
_CENTRE_SHARE = 0.35
# A built story is centred only when many documents tell it: in a handful of aggregator
# pages a detail only one page gives is as likely the story's own (the default corpus's
# three-document stories kept 6 of 29 and 49 of 162 facts when centred, and lost
# development precision 0.532 -> 0.500).
_CENTRE_MIN_BUILT = 6  # share of a sentence's rare-term weight that must be common


def _centred_group(group: Sequence[Paragraph]) -> list[Paragraph]:
    """A built story's paragraphs centred like `story_from_documents`' (see `_centred`).

    A story that several documents tell also carries what each of them says besides it:
    a live blog's other countries, a transcript's other items. Left in its facts, a
    Libya story built from such pages learns every Arab capital and later claims Syria
    reports (Timeline17 one folder). Paragraphs keep their index, so a paragraph that
    opened a unit still does.
    """
    documents: dict[str, list[Paragraph]] = defaultdict(list)
    for paragraph in group:
        documents[paragraph.document].append(paragraph)
    if len(documents) < _CENTRE_MIN_BUILT:
        return list(group)
    centred = _centred(list(documents.values()), keep_index=True)
    return sorted(
        (p for document in centred for p in document), key=lambda p: (p.document, p.index)
    )


def _centred(documents: list[list[Paragraph]], keep_index: bool = False) -> list[list[Paragraph]]:
    """Keep the sentences about what the documents have in common.

    Documents known to be about one story may also carry other topics (a news digest, a
    transcript of a whole show): their other topics' terms are frequent in one document
    only. A term's spread is the share of the other documents that use it; a sentence
    stays when enough of its rare-term weight is spread. A document with no such sentence
    keeps all of its sentences (it may be the only one on some side of the story).
    """
    if len(documents) < _CENTRE_MIN_DOCUMENTS:
        return documents
    used = [{t for p in document for t in content_terms(p.text)} for document in documents]
    frequency = Counter(term for terms in used for term in terms)
    others = len(documents) - 1
    centred: list[list[Paragraph]] = []
    for document in documents:
        kept: list[Paragraph] = []
        for paragraph in document:
            sentences = [
                s for s in split_sentences(paragraph.text) if _common(s, frequency, others)
            ]
            if sentences:
                index = paragraph.index if keep_index else len(kept)
                kept.append(replace(paragraph, index=index, text=" ".join(sentences)))
        centred.append(kept or document)
    return centred


def _common(sentence: str, frequency: Mapping[str, int], others: int) -> bool:
    rare = {t: w for t, w in weighted_terms(sentence).items() if w >= 2.0 and not t.isdigit()}
    total = sum(rare.values())
    if total == 0.0:
        return False
    spread = sum(w * (frequency.get(t, 1) - 1) / others for t, w in rare.items())
    return spread / total >= _CENTRE_SHARE
