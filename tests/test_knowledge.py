"""A story's knowledge is bounded: folding keeps the corpus, the informative and the recent,
knows what the kept sentences say, and a restart that relearns the facts folds alike."""
# ruff: noqa: E501  (fixture sentences are quoted whole, as news text reads)

import dataclasses
import math
from collections import defaultdict
from pathlib import Path
from random import Random

import pytest

from worker.decide.knowledge import KnowledgeBase
from worker.decide.novelty import NoveltyConfig, assess_sentence, known_from
from worker.decide.tracker import Tracker, TrackerConfig
from worker.models import Article, Story
from worker.stories.corpus import build_stories
from worker.stories.folder import read_corpus
from worker.text.specifics import SentenceFeatures, sentence_features
from worker.text.terms import term_weight

CONFIG = NoveltyConfig()
CORPUS = Path(__file__).resolve().parents[1] / "config" / "corpus"
CORPUS_FACT = "An Azerbaijan Airlines Embraer 190 crashed near Aktau in Kazakhstan, killing 38 of 67 people on board."
# Two sentences in the story's common words, then one that alone names a person.
REDUNDANT = [
    "Investigators in Kazakhstan examined the wreckage of the Embraer near Aktau on Monday.",
    "Investigators in Kazakhstan examined the flight recorders of the Embraer near Aktau on Tuesday.",
]
INFORMATIVE = (
    "Prosecutor Yerzhan Kusmanbetov opened a criminal case over the Embraer crash near Aktau."
)
LATER = [
    "Officials in Kazakhstan said the Embraer investigation near Aktau would take months.",
    "Officials in Kazakhstan said the Embraer wreckage near Aktau was moved to a hangar.",
]


def texts(knowledge) -> list[frozenset[str]]:
    return [frozenset(s) for s in knowledge.sentences]


def test_fold_drops_the_oldest_sentences_whose_rare_words_others_hold():
    knowledge = known_from([CORPUS_FACT], CONFIG)
    knowledge.pinned = 1
    for sentence in (*REDUNDANT, INFORMATIVE, *LATER):
        assert knowledge.add(sentence, CONFIG)
    learned = [sentence_features(s) for s in (CORPUS_FACT, *REDUNDANT, INFORMATIVE, *LATER)]
    before = {features.terms: knowledge.coverage(features) for features in learned}
    assert knowledge.fold(4, CONFIG) == 2
    kept = texts(knowledge)
    assert kept[0] == sentence_features(CORPUS_FACT).terms  # the corpus is never folded
    # The oldest redundant one goes, and the one that alone holds a name is kept though
    # older than the two after it.
    assert sentence_features(REDUNDANT[0]).terms not in kept
    assert sentence_features(INFORMATIVE).terms in kept
    assert len(kept) == 4
    # The index points at the kept sentences: each is still covered by itself.
    for features in learned:
        if features.terms in kept:
            assert knowledge.coverage(features) == before[features.terms]


def test_fold_takes_the_oldest_when_every_sentence_holds_something_alone():
    knowledge = known_from([CORPUS_FACT], CONFIG)
    knowledge.pinned = 1
    names = ["Kusmanbetov", "Karabayev", "Zhumagaliyev", "Bekturganov"]
    for name in names:
        assert knowledge.add(f"Minister {name} visited the crash site near Aktau.", CONFIG)
    assert knowledge.fold(3, CONFIG) == 2
    assert [
        next(t for t in s if t in {n.lower() for n in names}) for s in knowledge.sentences[1:]
    ] == [
        "zhumagaliyev",
        "bekturganov",
    ]
    # What the story knows is what its kept sentences say: the folded ministers are no
    # longer known names (nor their spelling variants), the kept ones still are.
    assert not knowledge.knows_name("kusmanbetov")
    assert not knowledge.knows_name("karabayew")
    assert knowledge.knows_name("zhumagaliyev") and knowledge.knows_name("bekturganow")
    assert knowledge.fold(0, CONFIG) == 2  # down to the corpus, never below it
    assert len(knowledge.sentences) == 1
    assert not knowledge.knows_name("bekturganov")


def test_fold_keeps_the_only_sentence_that_holds_a_figure():
    """A figure is what a development usually changes: folding the one sentence that
    holds it would make a report repeating it look new, so it goes last, like a name."""
    figure = "Investigators in Kazakhstan said the Embraer near Aktau carried $20,000 of mail."
    knowledge = known_from([CORPUS_FACT], CONFIG)
    knowledge.pinned = 1
    for sentence in (figure, *REDUNDANT, *LATER):
        assert knowledge.add(sentence, CONFIG)
    others = [s for n, s in enumerate(knowledge.sentences) if n != 1]
    rare = {t for t in knowledge.sentences[1] if term_weight(t) >= 3.0}
    assert rare and all(any(t in s for s in others) for t in rare)  # only the figure is its own
    assert knowledge.fold(4, CONFIG) == 2
    assert sentence_features(figure).terms in texts(knowledge)
    assert "$20000" in knowledge.specifics
    rehash = "Officials said the Embraer had carried $20,000 of mail when it came down near Aktau."
    assert "$20000" not in assess_sentence(knowledge, rehash, CONFIG).new_specifics


def test_a_story_keeps_only_the_specifics_novelty_asks_about():
    """Figures that count as news and whole names; not small numbers, dates or one-word
    names, which nothing asks the story about (each known sentence keeps its own)."""
    knowledge = known_from(
        ["Prosecutor Yerzhan Kusmanbetov said 2 of the 29 survivors in Aktau left on 3 May 2025."],
        CONFIG,
    )
    assert set(knowledge.specifics) == {"29", "prosecutor yerzhan kusmanbetov"}
    assert knowledge.sentence_specifics == [("29", "prosecutor yerzhan kusmanbetov")]
    assert knowledge.given_names["kusmanbetov"] == {"yerzhan"}


def test_a_folded_story_knows_exactly_what_one_that_learned_only_the_kept_sentences_does():
    """Folding rebuilds the words, specifics, spellings and given names from the kept
    sentences, so memory stays bounded with them: the same as learning those alone."""
    facts = [CORPUS_FACT]
    learned = [
        *REDUNDANT,
        INFORMATIVE,
        "Azerbaijan Airlines chief Samir Rzayev said the airline paid $20,000 to each family.",
        "Kazakh prosecutor Yerzhan Kusmanbetov said 29 survivors were treated in Aktau.",
        *LATER,
    ]
    knowledge = known_from(facts, CONFIG)
    knowledge.pinned = 1
    for sentence in learned:
        assert knowledge.add(sentence, CONFIG)
    assert knowledge.fold(4, CONFIG) == 4
    kept = [s for s in (*facts, *learned) if sentence_features(s).terms in texts(knowledge)]
    assert len(kept) == 4 and kept[0] == CORPUS_FACT
    fresh = known_from(kept, CONFIG)
    assert knowledge.sentences == fresh.sentences
    assert knowledge.terms == fresh.terms and knowledge.specifics == fresh.specifics
    assert knowledge.variants == fresh.variants
    assert dict(knowledge.given_names) == dict(fresh.given_names)
    gone = [s for s in learned if s not in kept]
    assert any(sentence_features(s).specifics - fresh.specifics.keys() for s in gone)


@pytest.fixture(scope="module")
def seed_stories() -> list[Story]:
    return build_stories(read_corpus(CORPUS))


def aktau_articles() -> list[Article]:
    """Twelve distinct reports of the Aktau crash, each of a few new sentences."""
    people = [
        "Abenov",
        "Baimukhanov",
        "Dosmagambetov",
        "Ermekov",
        "Ibraimov",
        "Kenzhebekov",
        "Mukhamedzhanov",
        "Nurlanov",
        "Omarov",
        "Sarsenbayev",
        "Tokayev",
        "Utemisov",
    ]
    return [
        Article(
            id=f"a{n}",
            title=f"Aktau crash: {name} questioned over the Azerbaijan Airlines Embraer",
            text=(
                f"Kazakh investigators questioned {name} about the Azerbaijan Airlines crash near Aktau. "
                f"{name} had inspected the Embraer {n + 3} days before it was diverted from Grozny. "
                f"The commission said {name} would testify again in {n + 2} weeks."
            ),
        )
        for n, name in enumerate(people)
    ]


def test_a_story_keeps_a_bounded_number_of_sentences_and_a_restart_folds_alike(seed_stories):
    config = TrackerConfig(max_known_sentences=8)
    live = Tracker(seed_stories, config)
    aktau = next(s for s in seed_stories if any("Aktau" in f for f in s.facts)).id
    pinned = len(live._knowledge[aktau].sentences)
    stored: list[str] = []
    for article in aktau_articles():
        decision = live.decide(article)
        assert decision.match is not None and decision.match.story_id == aktau
        stored.extend(live.learn(article, decision))
    learned = len(live._knowledge[aktau].sentences) - pinned
    assert len(stored) > 20  # it learned far more than it keeps
    assert 6 <= learned <= 8
    # A restarted worker relearns every stored fact in one call and reaches the same
    # sentences and the same decisions.
    restored = Tracker(seed_stories, config)
    restored.add_facts(aktau, stored)
    assert texts(restored._knowledge[aktau]) == texts(live._knowledge[aktau])
    probe = dataclasses.replace(aktau_articles()[0], id="probe")
    assert restored.decide(probe) == live.decide(probe)


def test_restoring_more_facts_than_one_article_may_teach_restores_them_all(seed_stories):
    """The bound on sentences learned per article must not cut a restart's batch short."""
    config = TrackerConfig(max_learned_sentences=3)
    live = Tracker(seed_stories, config)
    aktau = next(s for s in seed_stories if any("Aktau" in f for f in s.facts)).id
    stored: list[str] = []
    for article in aktau_articles()[:4]:
        stored.extend(live.learn(article, live.decide(article)))
    assert len(stored) > 3
    restored = Tracker(seed_stories, config)
    restored.add_facts(aktau, stored)
    assert texts(restored._knowledge[aktau]) == texts(live._knowledge[aktau])


def _brute_coverage(knowledge, features) -> float:
    """Coverage by brute force: every known sentence, its indexed terms shared in full."""
    weights = {t: term_weight(t) for t in knowledge.spelled_as_known(features.terms)}
    total = math.fsum(weights.values())
    shared = (
        math.fsum(w for t, w in weights.items() if w >= 1.5 and t in known)
        for known in knowledge.sentences
    )
    return max(shared, default=0.0) / total


def _loop_coverage(knowledge, features) -> float:
    """`KnowledgeBase.coverage` as a plain Python loop (as it was before its sums moved
    to numpy): posting lists read shortest first up to the floor, each capped at its
    last 256 entries, then the candidates completed from their own term sets."""
    weights = {t: term_weight(t) for t in knowledge.spelled_as_known(features.terms)}
    total = math.fsum(weights.values())
    if total == 0.0:
        return 1.0
    indexed = sorted(
        (t for t, w in weights.items() if w >= 1.5 and t in knowledge.index),
        key=lambda t: (min(len(knowledge.index[t]), 256), t),
    )
    remaining = sum(weights[t] for t in indexed)
    overlap: dict[int, float] = defaultdict(float)
    read = 0
    for term in indexed:
        if remaining < 0.4 * total:
            break
        for number in knowledge.index[term][-256:]:
            overlap[number] += weights[term]
        remaining -= weights[term]
        read += 1
    unread = frozenset(indexed[read:])
    best = max(overlap.values(), default=0.0)
    if unread:
        bar = max(best, 0.4 * total) - remaining
        for number, partial in overlap.items():
            if partial > bar:
                shared = unread.intersection(knowledge.sentences[number])
                completed = partial + math.fsum(weights[t] for t in shared)
                if completed > best:
                    best = completed
                    bar = max(bar, best - remaining)
    return best / total


def _invented_story(random: Random, sentences: int) -> tuple[KnowledgeBase, list[str]]:
    """Sentences of 6 out of 30 invented names (8 random letters: no two are spelling
    variants of each other)."""
    names = ["".join(random.choices("bdfgkmptvwxz", k=8)) for _ in range(30)]
    assert all(
        sum(a != b for a, b in zip(x, y, strict=True)) > 2 for x in names for y in names if x != y
    )
    knowledge = known_from([], CONFIG)
    for _ in range(sentences):
        knowledge.add(" ".join(random.sample(names, 6)) + ".", CONFIG)
    return knowledge, names


def _probes(random: Random, names: list[str]) -> list[SentenceFeatures]:
    return [
        sentence_features(" ".join([*random.sample(names, random.randint(3, 9)), "investigators"]))
        for _ in range(300)
    ]


@pytest.mark.parametrize(("floor", "seed", "least_exact"), [(0.4, 7, 100), (0.6, 5, 20)])
def test_coverage_is_exact_above_its_floor_and_a_lower_bound_under_it(floor, seed, least_exact):
    """The novelty floor (0.4, the default) and a higher one, as the duplicate test asks."""
    random = Random(seed)
    knowledge, names = _invented_story(random, 300)
    assert max(len(knowledge.index[name]) for name in names) < 256
    exact = 0
    for features in _probes(random, names):
        found, brute = knowledge.coverage(features, floor), _brute_coverage(knowledge, features)
        if brute >= floor:
            assert found == pytest.approx(brute, rel=1e-12)
            exact += 1
        else:
            assert found <= brute + 1e-12
    assert exact > least_exact


def test_coverage_sums_in_numpy_as_a_python_loop_does():
    """Every name is in more sentences than a posting list's cap, so old sentences are
    found only by completing them from the whole lists, in a loop for a few candidates
    and vectorised for many: both give the loop's value (to one rounding unit, where two
    sentences tie: see `KnowledgeBase._completed`)."""
    random = Random(11)
    knowledge, names = _invented_story(random, 2000)
    assert min(len(knowledge.index[name]) for name in names) > 256
    for features in _probes(random, names):
        assert knowledge.coverage(features) == pytest.approx(
            _loop_coverage(knowledge, features), rel=1e-15, abs=0.0
        )


def test_a_sentence_learned_before_its_words_posting_caps_is_still_a_copy():
    """A story learns a sentence, then hundreds more that share all its words but one:
    its common words' capped posting lists no longer reach it. Learning it again adds
    nothing: the duplicate test reads only the few lists it needs, and completes the
    sentence from whole lists (with the novelty floor it read the capped lists and
    stored it a second time)."""
    random = Random(3)
    words = ["".join(random.choices("bdfgkmptvwxz", k=8)) for _ in range(80)]
    rare, shared, fillers = words[0], words[1:6], words[6:]
    knowledge = known_from([], CONFIG)
    first = " ".join([rare, *shared]) + "."
    assert knowledge.add(first, CONFIG)
    for _ in range(300):
        knowledge.add(" ".join([*shared, *random.sample(fillers, 3)]) + ".", CONFIG)
    assert min(len(knowledge.index[word]) for word in shared) > 256
    learned = len(knowledge.sentences)
    assert not knowledge.add(first, CONFIG)
    assert len(knowledge.sentences) == learned


def test_a_sentence_exactly_at_the_duplicate_threshold_is_a_copy():
    """Nine of its ten words, all equally rare (unseen words weigh alike), are one known
    sentence: coverage 0.9, the duplicate threshold itself."""
    words = ["zorblat", "zquimfa", "zvextor", "zwomble", "zxarnik"]
    words += ["zyphlor", "zzadrik", "zzebulon", "zzifrat", "zzoxtan"]
    sentence = " ".join(words) + "."
    features = sentence_features(sentence)
    assert len({term_weight(t) for t in features.terms}) == 1 and len(features.terms) == 10
    knowledge = known_from([" ".join(words[1:]) + "."], CONFIG)
    assert knowledge.coverage(features) == pytest.approx(CONFIG.duplicate, rel=1e-12)
    assert not knowledge.add(sentence, CONFIG)


def test_a_remembered_spelling_changes_when_the_story_learns_a_variant():
    """`known_spelling` remembers its answers for words the story does not know: learning
    a spelling variant must still change them (none yet, then the variant; a variant that
    sorts first replaces the one found before), and `weighed` spells a sentence alike."""
    knowledge = known_from(["Investigators met officials in Aktau on Monday."], CONFIG)
    assert knowledge.known_spelling("zelenskiy") is None
    knowledge.add("Zelensky spoke to investigators in Aktau.", CONFIG)
    assert knowledge.known_spelling("zelenskiy") == "zelensky"
    knowledge.add("Zelenskij spoke to investigators in Aktau.", CONFIG)  # "zelenskij" < "zelensky"
    assert knowledge.known_spelling("zelenskiy") == "zelenskij"
    terms = sentence_features("Zelenskiy visited Aktau.").terms
    weighed = knowledge.weighed(terms)
    assert set(weighed) == (terms - {"zelenskiy"}) | {"zelenskij"}
    assert knowledge.spelled_as_known(terms) == set(weighed)
    assert all(w == term_weight(t) for t, w in weighed.items())
