"""TREC Temporal Summarization 2013-2015 as a sentence-level novelty protocol.

What this module is for: reading `trec-ts/<year>/` (topics XML, pooled update sentences,
update-nugget matches, nuggets) into one `TrecTopic` per topic, ready to replay. The
protocol (issue 3, item 4; documented here because TREC-TS has no "tracked story" of
its own):

1. The story is what a TREC-TS system is given: the topic's title and query. It becomes
   a keyword-defined story (like a keyword-only `[[stories]]` rule): the query is its
   keyword phrase and its key terms, the title its only known fact. No update text is
   used to build it, so every pooled sentence stays in the stream.
2. The stream is the topic's pooled update sentences grouped back into their documents
   (`doc_id`): a document's text is its pooled sentences in `sentence_id` order, one per
   line; documents stream in time order (the epoch that starts `doc_id`, ties by id).
   Each topic is replayed on its own tracker, as TREC-TS runs topics independently.
   2013 has one `updates.tsv.gz`; 2014 and 2015 use `updates_sampled.tsv.gz` (the 2014
   `updates_sampled.extended` pool is larger and not used).
3. The system's emitted sentences are the `new_facts` of its alerts, traced back to the
   update whose (whitespace-normalised) text contains them.
4. Copies: an update whose `duplicate_id` names another shares that update's nuggets
   (`storyeval.metrics.resolve_duplicates`), so emitting a copy of a found nugget is a
   repeat, not a new find.
5. Scores per topic (`storyeval.metrics.nugget_scores`): precision = emitted sentences
   that match a nugget no earlier emitted sentence matched / emitted sentences; recall =
   nuggets matched by emitted sentences / nuggets matched by at least one pooled update;
   latency = hours from a nugget's first pooled appearance to its first emitted match.
   Topics without such a nugget are left out of the macro average (recall undefined).

What it must not do: run the tracker or score; read nothing outside `trec-ts/`.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storyeval.metrics import resolve_duplicates
from worker.models import Article, Story

TREC_DIR = Path("trec-ts")


@dataclass(frozen=True, slots=True)
class TrecUpdate:
    update_id: str
    text: str  # whitespace-normalised, as the sentence splitter returns sentences


@dataclass(frozen=True, slots=True)
class TrecDocument:
    doc_id: str
    time: float  # epoch seconds
    updates: tuple[TrecUpdate, ...]  # in sentence_id order

    def article(self) -> Article:
        return Article(id=self.doc_id, title=None, text="\n".join(u.text for u in self.updates))

    def trace(self, sentence: str) -> str | None:
        """The update a sentence the system quoted from this document comes from."""
        needle = " ".join(sentence.split())
        for update in self.updates:
            if needle and needle in update.text:
                return update.update_id
        return None


@dataclass(frozen=True, slots=True)
class TrecTopic:
    query_id: str  # e.g. TS14.11
    year: str
    story: Story
    documents: tuple[TrecDocument, ...]  # stream order
    update_nuggets: dict[str, frozenset[str]]  # duplicates resolved, pooled updates only
    first_pooled: dict[str, float]  # nugget -> time of its first matching pooled update
    nuggets_total: int  # nuggets the assessors wrote for the topic


def _tsv_rows(path: Path, columns: int) -> Iterator[list[str]]:
    """Data rows of a NIST TSV file; header lines (some space-separated) are skipped."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("query_id") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t", columns - 1)
            if len(fields) == columns:
                yield fields


def _epoch(identifier: str) -> float:
    return float(identifier.split("-", 1)[0])


def updates_file(year_dir: Path) -> Path:
    plain = year_dir / "updates.tsv.gz"
    return plain if plain.exists() else year_dir / "updates_sampled.tsv.gz"


def read_topics(year_dir: Path) -> dict[str, tuple[str, str]]:
    """Topic number -> (title, query) from the year's topics XML."""
    topics: dict[str, tuple[str, str]] = {}
    for path in sorted(year_dir.glob("*topics*.xml")):
        # NIST's own topic file, read from the local data folder: not untrusted input.
        root = ET.parse(path).getroot()  # noqa: S314
        for event in root.iter("event"):
            number = (event.findtext("id") or "").strip()
            title = " ".join((event.findtext("title") or "").split())
            query = " ".join((event.findtext("query") or "").split())
            if number:
                topics[number] = (title or query, query or title)
    return topics


def _keyword_story(query_id: str, title: str, query: str) -> Story:
    return Story(
        id=query_id,
        title=title,
        key_terms=tuple(query.split()),
        documents=(),
        facts=(title,),
        keywords=(query,),
    )


def read_year(data_dir: Path, year: str) -> list[TrecTopic]:
    """Every topic of one TREC-TS year that has pooled updates, in topic order."""
    year_dir = data_dir / TREC_DIR / year
    topics = read_topics(year_dir)
    sentences: dict[str, dict[str, list[tuple[int, TrecUpdate]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    duplicate_of: dict[str, str] = {}
    pooled: set[str] = set()
    for query_id, update_id, doc_id, sentence_id, _len, duplicate, text in _tsv_rows(
        updates_file(year_dir), 7
    ):
        update = TrecUpdate(update_id, " ".join(text.split()))
        sentences[query_id][doc_id].append((int(sentence_id), update))
        pooled.add(update_id)
        if duplicate not in {"NULL", "", update_id}:
            duplicate_of[update_id] = duplicate
    matches: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for query_id, update_id, nugget_id, *_rest in _tsv_rows(year_dir / "matches.tsv.gz", 6):
        matches[query_id.strip()][update_id.strip()].add(nugget_id.strip())
    nugget_counts: dict[str, int] = defaultdict(int)
    for query_id, *_rest in _tsv_rows(year_dir / "nuggets.tsv.gz", 6):
        nugget_counts[query_id] += 1

    result: list[TrecTopic] = []
    for query_id in sorted(sentences, key=_topic_order):
        number = query_id.rsplit(".", 1)[-1]
        title, query = topics.get(number, (query_id, query_id))
        documents = tuple(
            TrecDocument(doc_id, _epoch(doc_id), tuple(u for _, u in sorted(rows, key=_first)))
            for doc_id, rows in sorted(sentences[query_id].items(), key=_doc_order)
        )
        resolved = resolve_duplicates(matches.get(query_id, {}), duplicate_of)
        update_nuggets = {u: n for u, n in resolved.items() if u in pooled}
        first_pooled: dict[str, float] = {}
        for update_id, nuggets in update_nuggets.items():
            for nugget in nuggets:
                time = _epoch(update_id)
                first_pooled[nugget] = min(first_pooled.get(nugget, time), time)
        result.append(
            TrecTopic(
                query_id,
                year,
                _keyword_story(query_id, title, query),
                documents,
                update_nuggets,
                first_pooled,
                nugget_counts.get(query_id, 0),
            )
        )
    return result


def _first(row: tuple[int, TrecUpdate]) -> int:
    return row[0]


def _doc_order(item: tuple[str, object]) -> tuple[float, str]:
    return (_epoch(item[0]), item[0])


def _topic_order(query_id: str) -> tuple[str, int]:
    prefix, _, number = query_id.rpartition(".")
    return (prefix, int(number) if number.isdigit() else 0)


def available_years(data_dir: Path) -> list[str]:
    base = data_dir / TREC_DIR
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "matches.tsv.gz").exists())
