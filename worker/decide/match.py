"""Topic tracking: which tracked story, if any, is an article about?

What this module is for: scoring an article against every story profile with signals that
resist confusers (another plane crash, another Baku event): terms weighted by their
background rarity (`worker.text.terms.term_weight`), the named entities the article shares with
the story, and a calibrated decision (threshold plus margin over the runner-up). Each
match keeps its reasons (shared entities, terms, score) for the alert.

How a profile follows a drifting story (numbered because each step guards the next):
1. The seed corpus is the anchor: its term counts never decay.
2. Sentences of accepted articles enter a bounded window (`learn_window` sentences, the
   oldest leaving first), so months-long stories follow their new names and places while
   memory and scoring cost stay bounded.
3. Only on-topic sentences enter the window: a sentence must share enough rare terms
   with the profile (`learn_gate`). Background paragraphs about a neighbouring story
   (Syria in a Libya article) therefore never teach the profile, which keeps it from
   drifting into the neighbour.
4. A learned sentence teaches the story names (the protagonists that decide which story
   an article is about, see `affinities`) only when it also names one of the corpus's
   protagonists. Otherwise a Libya story that accepted a few reports comparing Gaddafi
   with Assad learns "Assad", then "Damascus", then "Homs", and a year later claims every
   Syria report (measured on Timeline17: 296 Syria articles matched to Libya).
The profile's squared norm is kept up to date term by term, so learning costs O(terms of
the sentence), not O(profile).

What it must not do: decide novelty, mutate profiles outside `StoryProfile.add_text`
(the tracker owns state), or do I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from worker.decide.profile import StoryProfile, names_of
from worker.models import Match
from worker.text.specifics import extract_entities
from worker.text.terms import content_terms, split_sentences, term_weight, tokenize

Vector = dict[str, float]


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Matching knobs, documented so a reader can tell what each one trades.

    - `threshold`: the main knob, lowest score that can be a match (cosine of
      rarity-weighted vectors). Higher: fewer wrong stories, more missed follow-ups.
    - `margin`: how far ahead of the runner-up story the best one must be; two stories
      that score alike make the article ambiguous, and an ambiguous alert is a bad alert.
    - `min_shared_entities`: distinct names or informative terms (background weight at
      least `support_weight`) the article must share with the story: one shared word is
      a coincidence, several co-occurring are a topic. The bar for a term is lower than
      `rare_term_weight` because a story the corpus gives in one headline has only two or
      three rare words to share ("Tajikistan Buys Presidential Plane From Mexico").
    - `rare_term_weight`: background weight from which a term counts as rare.
    - `learned_weight`: how much one learned sentence counts next to one seed sentence;
      below 1 so the user's corpus stays the anchor.
    - `learn_window`: learned sentences a profile keeps (the oldest leave first).
    - `learn_gate`: share of a sentence's rare-term weight the profile must already know
      for the sentence to teach the profile (novelty still learns every sentence).
    - `title_weight`, `lead_weight`, `lead_sentences`: editors put the topic in the title
      and the first sentences, so their terms count more.
    - `dominant_names`, `story_names`, `min_affinity`, `core_names`: an article is about a
      story only when the story owns enough (`min_affinity`) of the article's
      `dominant_names` most repeated distinctive names, one of them among the story's
      `core_names` most repeated ones (a story that has learned side names from
      comparisons, Assad in a Libya story, does not own a report those alone lead; a
      young story, which knows too few names to have side ones, is spared this), or
      when one of its leading ones (the more repeated half) is among the story's
      `core_names` most repeated ones (a report on swine flu that quotes officials no
      story knows is still about the H1N1 story). A name counts for a story when it is
      among the story's `story_names` most repeated ones, and only for the story's share
      of it: a name every tracked story uses tells none of them apart (see
      `affinities`). A Syria report that mentions Libya in passing shares words with a
      Libya story, but its own protagonists are not the story's; an article whose
      protagonists no story knows, and that names none of a story's core names, stays
      unmatched, unless:
    - `strong_score`: the cosine from which an article that names one of the story's
      core names anywhere among its dominant ones is about the story, whoever leads it.
      A report on newly captured prisoners ("NK", "POWs") is led by names no story knows,
      yet shares most of the troop story's vocabulary and names Kursk. The core name is
      still required: uprisings read alike, and a Syria report worded like the Libya
      story but naming neither Libya nor Gaddafi is not about it (on Timeline17, the
      score alone let 275 Syria reports into the Libya story).

    No knob: a name that is core to two tracked stories ("Baku" for a crash and for a
    summit held there) does not by itself make an article about either: it counts only
    for each story's share of it and leads neither. Another Azerbaijan-Russia row led by
    Azerbaijan and Baku is not the crash; a crash follow-up still names Aktau or Grozny.
    An article that reads like the story (`strong_score`) may still name it by a shared
    name: on hamborg-events, many events share their protagonists.
    """

    threshold: float = 0.15
    margin: float = 0.02
    min_shared_entities: int = 3
    rare_term_weight: float = 3.0
    learned_weight: float = 0.5
    learn_window: int = 3000
    learn_gate: float = 0.5
    title_weight: float = 3.0
    lead_weight: float = 2.0
    lead_sentences: int = 3
    dominant_names: int = 5
    story_names: int = 25
    min_affinity: float = 0.3
    core_names: int = 10
    support_weight: float = 2.0
    strong_score: float = 0.3


@dataclass(frozen=True, slots=True)
class ArticleView:
    """The parts of an article the matcher compares, computed once for all stories."""

    vector: Vector
    norm: float
    entities: frozenset[str]
    dominant: frozenset[str]  # the article's most repeated distinctive names
    dominant_counts: tuple[tuple[str, int], ...]  # the same names with their repeats
    plain: str  # " word word " for keyword and exclusion phrase tests

    @property
    def leading(self) -> frozenset[str]:
        """The more repeated half of the dominant names: who the article is about."""
        half = (len(self.dominant_counts) + 1) // 2
        return frozenset(name for name, _ in self.dominant_counts[:half])


def article_view(title: str | None, text: str, config: MatchConfig) -> ArticleView:
    """Rarity-weighted term vector; title and lead terms count more (the topic sits there)."""
    counts: dict[str, float] = {}
    sentences = split_sentences(text)
    for number, sentence in enumerate(sentences):
        boost = config.lead_weight if number < config.lead_sentences else 1.0
        for term in set(content_terms(sentence)):
            counts[term] = counts.get(term, 0.0) + boost
    entities: set[str] = set()
    name_counts: Counter[str] = Counter()
    if title:
        for term in set(content_terms(title)):
            counts[term] = counts.get(term, 0.0) + config.title_weight
        found = extract_entities(title)
        entities.update(found)
        name_counts.update({name: 2 for name in names_of(found)})  # the title names the topic
    for sentence in sentences:
        found = extract_entities(sentence)
        entities.update(found)
        name_counts.update(names_of(found))
    ranked = sorted(name_counts.items(), key=lambda item: (-item[1], item[0]))
    top = tuple(ranked[: config.dominant_names])
    dominant = frozenset(name for name, _ in top)
    vector = {t: term_weight(t) * (1.0 + math.log(c)) for t, c in counts.items() if c >= 1}
    norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
    plain = " " + " ".join(tokenize(f"{title or ''} {text}")) + " "
    return ArticleView(vector, norm, frozenset(entities), dominant, top, plain)


def _contains_phrase(haystack: str, phrase: str) -> bool:
    return f" {' '.join(tokenize(phrase))} " in haystack


@dataclass(frozen=True, slots=True)
class Candidate:
    story_id: str
    score: float
    shared_entities: tuple[str, ...]
    shared_terms: tuple[str, ...]


def affinities(
    profiles: Sequence[StoryProfile], view: ArticleView, config: MatchConfig
) -> list[float]:
    """Per story, the share of the article's dominant names that belong to that story.

    Each dominant name (weighted by its repeats in the article) is split among the stories
    that use it, in proportion to how often each uses it per sentence: a story owns its
    distinctive names, a name all stories share is spread thin, and a name no story knows
    belongs to none (so the article is about none of them).
    """
    result = [0.0] * len(profiles)
    total = 0.0
    for name, count in view.dominant_counts:
        rates = [p.name_rate(name, config.story_names) for p in profiles]
        users = sum(1 for rate in rates if rate > 0.0)
        if len(profiles) >= 3 and users * 2 > len(profiles):
            continue  # most stories use it ("Reuters", "Washington"): it tells none apart
        total += count
        used = math.fsum(rates)
        if used > 0.0:
            for index, rate in enumerate(rates):
                result[index] += count * rate / used
    return [value / total for value in result] if total else result


def score_story(
    profile: StoryProfile,
    view: ArticleView,
    config: MatchConfig,
    affinity: float = 1.0,
    contested: frozenset[str] = frozenset(),
) -> Candidate:
    """Score one story: weighted cosine, zero when rules or co-occurrence rule it out."""
    if any(_contains_phrase(view.plain, phrase) for phrase in profile.exclude):
        return Candidate(profile.story_id, 0.0, (), ())
    keyword_hits = tuple(k for k in profile.keywords if _contains_phrase(view.plain, k))
    if profile.keywords and not profile.weights and not keyword_hits:
        return Candidate(profile.story_id, 0.0, (), ())
    contributions = _contributions(profile, view)
    cosine = sum(contributions.values()) / (view.norm * profile.norm())
    shared_entities = sorted(
        (e for e in view.entities if e in profile.entities and _distinctive(e, config)),
        key=lambda e: (-profile.entities[e], e),
    )
    rare_terms = {t for t in contributions if term_weight(t) >= config.support_weight}
    support = len(set(shared_entities) | rare_terms)
    core = profile.top_names(config.core_names)
    # Names core to another tracked story (`contested`: "Baku" for a crash and for a
    # summit held there) cannot tell which of the two an article is about.
    own_leading = view.leading - contested
    young = len(profile.names) < config.story_names
    about_story = (
        (affinity >= config.min_affinity and (young or bool(view.dominant & core)))
        or (cosine >= config.strong_score and bool(view.dominant & core))
        # The story's own most repeated names ("swine", "BP", "Gaddafi") among the
        # article's: a report that quotes officials no story knows is still about it.
        or bool(own_leading & core)
        # A young story knows too few names to own a share of the article's: one of
        # the article's leading protagonists among the story's names is all it can tell.
        or (young and bool(own_leading & profile.top_names(config.story_names)))
    )
    score = cosine
    if keyword_hits:
        score = max(score, config.threshold) + 0.05 * len(keyword_hits)
    elif support < config.min_shared_entities or not about_story:
        score = min(score, config.threshold * 0.5)
    top_terms = sorted(contributions, key=lambda t: (-contributions[t], t))[:6]
    return Candidate(profile.story_id, score, tuple(shared_entities[:6]), tuple(top_terms))


def _contributions(profile: StoryProfile, view: ArticleView) -> dict[str, float]:
    weights = profile.weights
    contributions: dict[str, float] = {}
    for term, weight in view.vector.items():
        story_weight = weights.get(term)
        if story_weight:
            contributions[term] = weight * story_weight
    return contributions


def cosine(profile: StoryProfile, view: ArticleView) -> float:
    """The weighted cosine of the article and the profile, nothing else considered."""
    return sum(_contributions(profile, view).values()) / (view.norm * profile.norm())


def without_rejected(
    candidates: Sequence[Candidate],
    profiles: Mapping[str, StoryProfile],
    rejected: Mapping[str, StoryProfile],
    view: ArticleView,
) -> list[Candidate]:
    """The candidates, a story's score zeroed where the article is closer to what people
    said was not that story ("wrong story" feedback: `rejected`) than to the story itself.

    A nearest-centroid test with no threshold of its own: the story keeps the article
    unless the rejected reports resemble it more.
    """
    kept = [
        dataclasses.replace(c, score=0.0)
        if c.story_id in rejected
        and c.score > 0.0
        and cosine(rejected[c.story_id], view) >= cosine(profiles[c.story_id], view)
        else c
        for c in candidates
    ]
    return sorted(kept, key=lambda c: (-c.score, c.story_id))


def _distinctive(entity: str, config: MatchConfig) -> bool:
    return (
        max((term_weight(part) for part in entity.split()), default=0.0) >= config.rare_term_weight
    )


def rank(
    profiles: Iterable[StoryProfile],
    title: str | None,
    text: str,
    config: MatchConfig,
    *,
    view: ArticleView | None = None,
) -> list[Candidate]:
    """Every story scored against the article, best first (ties broken by story id).
    `view`: the article's view when the caller has it (`article_view` of the same)."""
    view = article_view(title, text, config) if view is None else view
    stories = list(profiles)
    owned = affinities(stories, view, config)
    cores = [p.top_names(config.core_names) for p in stories]
    core_of = Counter(name for core in cores for name in core)
    scored = [
        # Per story: the names core to any other story (a name of its own core is
        # counted once for itself).
        score_story(p, view, config, a, frozenset(n for n in core_of if core_of[n] > (n in core)))
        for p, a, core in zip(stories, owned, cores, strict=True)
    ]
    return sorted(scored, key=lambda c: (-c.score, c.story_id))


def decide_match(candidates: Sequence[Candidate], config: MatchConfig) -> Match | None:
    """The calibrated decision: best score over threshold and ahead of the runner-up."""
    if not candidates:
        return None
    best = candidates[0]
    runner_up = candidates[1].score if len(candidates) > 1 else 0.0
    if best.score < config.threshold or best.score - runner_up < config.margin:
        return None
    reasons = [f"score {best.score:.2f} (runner-up {runner_up:.2f})"]
    if best.shared_entities:
        reasons.append("shared entities: " + ", ".join(best.shared_entities))
    if best.shared_terms:
        reasons.append("shared terms: " + ", ".join(best.shared_terms))
    return Match(story_id=best.story_id, score=round(best.score, 4), reasons=tuple(reasons))
