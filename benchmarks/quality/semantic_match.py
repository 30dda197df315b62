"""Does the all-MiniLM-L6-v2 embedding help MATCHING when used selectively?

Replays seed-followups (dev), Timeline17 and hamborg-events exactly as the harness does
(decide, then learn, article by article), with the lexical decision of `worker.decide.match`
reviewed by `worker.decide.semantic.SemanticMatcher` at the one place tracker.decide would call
it: between `rank` and the final match (the script swaps `worker.decide.tracker.decide_match`
for the review during a replay; worker/decide/tracker.py itself is unchanged). Rules measured
(each alone, then combined): (a) re-rank ambiguous top-2, (b) veto far-off matches, (c)
admit near-misses. Scores: `storyeval.metrics.tracking_scores` (majority-vote mapping on
seed, identity on T17 and hamborg).

Thresholds are picked by leave-one-story-out cross-validation on seed: each fold holds
out one gold story (its on-topic items, plus the off-topic items whose lexical top
candidate maps to it), picks the grid point with the best tracking F1 on the other folds,
and scores the held-out items with it; the pooled held-out decisions give the CV F1. The
point chosen on all of seed is then run on T17 and hamborg unchanged.

Needs the semantic extra (see worker/decide/semantic.py, INSTALL_HINT):

    /work/sem-venv/bin/python benchmarks/quality/semantic_match.py          # sweeps, T17 1 in 4
    ... semantic_match.py --t17-stride 1                                     # full T17
    ... semantic_match.py --cost                                             # RSS, ms/article,
                                                                             # full T17 live
Embeddings of article leads and story sentences are cached in --cache (an .npz) so that
reruns only pay the replays; --cost never reads the cache. --rss: peak RSS of a
worker-sized process (default corpus, model, seed stream).

Results (benchmarks/results/semantic_match*.json, semantic_cost.json; tracking F1, P/R):

| rule (point)                     | seed full | seed CV | T17 1/4   | T17 full   | hamborg   |
|----------------------------------|-----------|---------|-----------|------------|-----------|
| lexical                          | .906      | .906    | .909      | .914       | .858      |
| (a) re-rank, seed-chosen (off)   | .906      | .906    | .909      |            | .858 (2)  |
| (a) re-rank gap .05 lead .05     | .906 (0)  |         | .909 (1)  |            | .858 (5)  |
| (b) veto, seed-chosen (off)      | .906      | .892    | .909      |            | .858      |
| (b) veto <.3, floor .2, drop .2  | .896 (5)  |         | .879 (53) |            | .856 (5)  |
| (c) admit .5/.6/.15, learn_leads | .920 (4)  | .888    | .929 (28) | .935 (122) | .884 (21) |
| (c) admit .5/.6/.10, static      | .894 (2)  |         | .916 (10) | .922 (47)  | .889 (18) |

(n) = decisions the rule changed. Seed-chosen points are picked on all 105 seed items;
the CV column picks per held-out story. T17 full at 128 word pieces: .936 (123 admits).

Costs (2 shared cores, noisy): batched encoding 16-55 ms/article at 128 word pieces,
29-69 at 256; full T17 replay 106 s lexical, 190 s with static admit (1,955 texts encoded
one at a time), 560 s with admit + learn_leads one at a time at 256, 189 s with
learn_leads batched 256 ahead at 128. Peak RSS: worker-sized process 762 MB at 128
(911 at 256; 33 before the model); full T17 replay 559 MB lexical, 1.3-1.4 GB with it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import worker.decide.tracker as tracker_module  # noqa: E402
from storyeval.metrics import SystemItem, map_stories, tracking_scores  # noqa: E402
from storyeval.report import default_data_dir  # noqa: E402
from storyeval.sets import (  # noqa: E402
    SEED_FILE,
    TrackingProtocol,
    hamborg_protocol,
    seed_protocol,
    subsample,
    t17_protocol,
)
from worker.decide.embedding import (  # noqa: E402
    Embedder,
    Embedding,
    EncodeFn,
    lead_text,
    load_encoder,
)
from worker.decide.match import Candidate, MatchConfig, decide_match  # noqa: E402
from worker.decide.semantic import SemanticConfig, SemanticMatcher  # noqa: E402
from worker.decide.tracker import Tracker  # noqa: E402
from worker.models import Article, Decision, Match  # noqa: E402

# ---------------------------------------------------------------------------------------
# Embeddings with an optional disk cache


class DiskCachedEncoder:
    """The real encoder, memoized on disk across runs (texts -> vectors)."""

    def __init__(self, encode: EncodeFn | None, path: Path | None) -> None:
        self._encode = encode
        self.path = path
        self.vectors: dict[str, Embedding] = {}
        self.encoded = 0
        self.seconds = 0.0
        if path is not None and path.is_file():
            import numpy as np  # noqa: PLC0415 - only the semantic extra brings numpy

            data = np.load(path, allow_pickle=False)
            for text, row in zip(data["texts"].tolist(), data["vectors"].tolist(), strict=True):
                self.vectors[text] = tuple(row)

    def __call__(self, texts: Sequence[str]) -> list[Embedding]:
        missing = [t for t in texts if t not in self.vectors]
        if missing:
            if self._encode is None:
                self._encode = load_encoder()
            started = time.perf_counter()
            for text, vector in zip(missing, self._encode(missing), strict=True):
                self.vectors[text] = vector
            self.seconds += time.perf_counter() - started
            self.encoded += len(missing)
        return [self.vectors[t] for t in texts]

    def save(self) -> None:
        if self.path is None or not self.encoded:
            return
        import numpy as np  # noqa: PLC0415

        texts = list(self.vectors)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            self.path, texts=np.array(texts), vectors=np.array([self.vectors[t] for t in texts])
        )


# ---------------------------------------------------------------------------------------
# Replay with the review between rank and the match


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    id: str
    story: str | None  # final system story
    lexical: str | None  # lexical decision
    top: tuple[tuple[str, float, float], ...]  # (story, lexical score, cosine) best 3
    rule: str | None


class SemanticTracker(Tracker):
    """Tracker whose decide reviews the lexical match (what the proposed hook would do)."""

    def __init__(self, protocol: TrackingProtocol, semantic: SemanticMatcher | None) -> None:
        super().__init__(list(protocol.stories))
        self.semantic = semantic
        self.rows: list[Row] = []
        self.embedded = 0  # articles the review had to embed
        self._article: Article | None = None
        self._pending: Row | None = None

    def _review(self, candidates: Sequence[Candidate], config: MatchConfig) -> Match | None:
        lexical = decide_match(candidates, config)
        top = tuple((c.story_id, c.score, 0.0) for c in candidates[:3])
        match, rule = lexical, None
        if self.semantic is not None and self._article is not None:
            article = self._article
            misses = self.semantic.embedder.misses + self.semantic.embedder.hits
            review = self.semantic.review(candidates, lexical, article.title, article.text, config)
            if self.semantic.embedder.misses + self.semantic.embedder.hits != misses:
                self.embedded += 1
            match, rule = review.match, review.rule
        self._pending = Row(
            "", match.story_id if match else None, lexical.story_id if lexical else None, top, rule
        )
        return match

    def decide(self, article: Article) -> Decision:
        self._article = article
        decision = super().decide(article)
        assert self._pending is not None
        self.rows.append(dataclasses.replace(self._pending, id=article.id))
        return decision

    def learn(self, article: Article, decision: Decision) -> tuple[str, ...]:
        if self.semantic is not None and decision.match is not None:
            self.semantic.learn(decision.match.story_id, article.title, article.text)
        return super().learn(article, decision)


@contextmanager
def reviewing(tracker: SemanticTracker) -> Iterator[None]:
    original = tracker_module.decide_match
    tracker_module.decide_match = tracker._review
    try:
        yield
    finally:
        tracker_module.decide_match = original


def replay(
    protocol: TrackingProtocol,
    config: SemanticConfig | None,
    encoder: EncodeFn | None,
    prefetch: int = 0,
) -> tuple[list[Row], float]:
    """Decide then learn every stream article. The review embeds an article only when a
    rule's lexical precondition holds (one at a time, as a live worker would)."""
    semantic = None
    if config is not None and encoder is not None:
        embedder = Embedder(encoder, batch_size=config.batch_size, cache_size=config.cache_size)
        semantic = SemanticMatcher(protocol.stories, config, embedder)
    tracker = SemanticTracker(protocol, semantic)
    started = time.perf_counter()
    stream = protocol.stream
    step = prefetch or len(stream) or 1
    with reviewing(tracker):
        for start in range(0, len(stream), step):
            part = stream[start : start + step]
            if prefetch and semantic is not None:
                # A catch-up or replay knows the next articles: encode them batched.
                semantic.prepare((a.title, a.text) for a in part)
            for article in part:
                tracker.learn(article, tracker.decide(article))
    REPLAY_STATS["embedded"] = tracker.embedded
    return tracker.rows, time.perf_counter() - started


REPLAY_STATS: dict[str, int] = {}


# ---------------------------------------------------------------------------------------
# Scoring and cross-validation


def score(
    protocol: TrackingProtocol, rows: Sequence[Row], keep: set[str] | None = None
) -> dict[str, Any]:
    system = [SystemItem(r.id, r.story, False) for r in rows]
    mapping = (
        {s.id: s.id for s in protocol.stories}
        if protocol.gold_ids
        else map_stories(system, list(protocol.gold))
    )
    gold = list(protocol.gold)
    if keep is not None:
        pairs = [(s, g) for s, g in zip(system, gold, strict=True) if g.id in keep]
        system, gold = [p[0] for p in pairs], [p[1] for p in pairs]
    s = tracking_scores(system, gold, mapping)
    rules = Counter(r.rule for r in rows if r.rule and (keep is None or r.id in keep))
    return {"p": s.precision, "r": s.recall, "f1": s.f1, "rules": dict(rules)}


def folds(protocol: TrackingProtocol, lexical: Sequence[Row]) -> dict[str, str]:
    """Item id -> held-out story: its gold story, or for an off-topic item the gold story
    its lexical top candidate maps to (the story it would be confused with)."""
    system = [SystemItem(r.id, r.story, False) for r in lexical]
    mapping = map_stories(system, list(protocol.gold))
    result = {}
    for row, gold in zip(lexical, protocol.gold, strict=True):
        if gold.story is not None:
            result[gold.id] = gold.story
        else:
            top = row.top[0][0] if row.top else None
            result[gold.id] = f"off:{mapping.get(top) if top else None}"
    # Off-topic items confusable with a gold story are held out with that story.
    return {k: v[4:] if v.startswith("off:") and v[4:] != "None" else v for k, v in result.items()}


def cross_validate(
    protocol: TrackingProtocol,
    runs: dict[str, list[Row]],
    fold_of: dict[str, str],
) -> dict[str, Any]:
    """Leave-one-story-out: per fold, the grid point best on the other folds (ties: the
    first in grid order, the most conservative) decides the held-out items."""
    names = list(runs)
    held: list[Row] = []
    chosen: dict[str, str] = {}
    by_run_mapping = {}
    for name, rows in runs.items():
        system = [SystemItem(r.id, r.story, False) for r in rows]
        by_run_mapping[name] = map_stories(system, list(protocol.gold))
    for fold in sorted(set(fold_of.values())):
        train = {i for i, f in fold_of.items() if f != fold}
        best = max(names, key=lambda n: (score(protocol, runs[n], train)["f1"], -names.index(n)))
        chosen[fold] = best
        mapping = by_run_mapping[best]
        for row in runs[best]:
            if fold_of[row.id] == fold:
                # Map through the chosen run's own mapping to gold ids.
                held.append(
                    dataclasses.replace(row, story=mapping.get(row.story) if row.story else None)
                )
    order = {g.id: n for n, g in enumerate(protocol.gold)}
    held.sort(key=lambda r: order[r.id])
    system = [SystemItem(r.id, r.story, False) for r in held]
    s = tracking_scores(
        system, list(protocol.gold), {g: g for g in {x.story for x in protocol.gold} if g}
    )
    return {"p": s.precision, "r": s.recall, "f1": s.f1, "chosen": chosen}


# ---------------------------------------------------------------------------------------
# The grids: the first point of each is the most conservative

OFF = SemanticConfig(enabled=True, rerank=False, veto=False, admit=False, learn_leads=False)
GRIDS: dict[str, list[SemanticConfig]] = {
    "rerank": [
        dataclasses.replace(OFF, rerank=True, rerank_gap=gap, rerank_lead=lead)
        for gap in (0.02, 0.05, 0.1, 0.2)
        for lead in (0.1, 0.05, 0.02, 0.0)
    ],
    "veto": [
        dataclasses.replace(OFF, veto=True, veto_below=below, veto_floor=floor, veto_drop=drop)
        for below in (0.3, 0.5)
        for floor in (0.0, 0.2, 0.3)
        for drop in (1.0, 0.3, 0.2, 0.1)
    ],
    "admit": [
        dataclasses.replace(
            OFF, admit=True, admit_floor=floor, admit_similarity=sim, admit_lead=lead
        )
        for floor in (0.9, 0.5)
        for sim in (0.7, 0.6, 0.5, 0.4)
        for lead in (0.15, 0.1, 0.05)
    ],
}


GRIDS = {
    rule: [
        c
        for learn in (False, True)
        for c in (dataclasses.replace(g, learn_leads=learn) for g in grid)
    ]
    for rule, grid in GRIDS.items()
}
# Also run on T17 and hamborg whatever seed chose: a rule that never fires on seed is
# chosen "off" there, and these show what it does where it does fire.
MODERATE = {
    "rerank": dataclasses.replace(OFF, rerank=True, rerank_gap=0.05, rerank_lead=0.05),
    "veto": dataclasses.replace(OFF, veto=True, veto_below=0.3, veto_floor=0.2, veto_drop=0.2),
    "admit": dataclasses.replace(
        OFF, admit=True, admit_floor=0.5, admit_similarity=0.6, admit_lead=0.1
    ),
}


def label(config: SemanticConfig) -> str:
    parts = []
    if config.rerank:
        parts.append(f"rerank(gap={config.rerank_gap},lead={config.rerank_lead})")
    if config.veto:
        parts.append(
            f"veto(below={config.veto_below},floor={config.veto_floor},drop={config.veto_drop})"
        )
    if config.admit:
        parts.append(
            f"admit(floor={config.admit_floor},sim={config.admit_similarity},"
            f"lead={config.admit_lead})"
        )
    if config.learn_leads:
        parts.append("learn_leads")
    return "+".join(parts) or "lexical"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--corpus", type=Path, default=ROOT / "config" / "corpus")
    parser.add_argument("--t17-stride", type=int, default=4)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/storywatch-semantic.npz"))
    parser.add_argument("--sets", default="seed,t17,hamborg")
    parser.add_argument(
        "--only", help="run only these labels' configs (comma: rerank,veto,admit,all)"
    )
    parser.add_argument("--cost", action="store_true", help="live encoding on full T17: time, RSS")
    parser.add_argument("--rss", action="store_true", help="peak RSS of a worker with the model")
    parser.add_argument("--max-tokens", type=int, default=256, help="--cost: word pieces")
    parser.add_argument("--prefetch", type=int, default=0, help="--cost: encode N ahead")
    parser.add_argument("--dump", action="store_true", help="print seed rows")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "semantic_match.json"
    )
    args = parser.parse_args()
    if args.cost:
        return cost(args)
    if args.rss:
        return worker_rss(args)

    encoder = DiskCachedEncoder(None, args.cache)
    protocols: dict[str, TrackingProtocol] = {}
    wanted = args.sets.split(",")
    if "seed" in wanted:
        protocols["seed"] = seed_protocol(args.data / SEED_FILE, args.corpus)
    if "t17" in wanted:
        protocols["t17"] = subsample(t17_protocol(args.data), args.t17_stride)
    if "hamborg" in wanted:
        protocols["hamborg"] = hamborg_protocol(args.data)

    results: dict[str, Any] = {"t17_stride": args.t17_stride, "sets": {}}
    seed = protocols.get("seed")
    chosen: dict[str, SemanticConfig] = {}
    if seed is not None:
        lexical_rows, _ = replay(seed, None, None)
        fold_of = folds(seed, lexical_rows)
        seed_result: dict[str, Any] = {"lexical": score(seed, lexical_rows), "rules": {}}
        if args.dump:
            dump(seed, lexical_rows, encoder)
        for rule, grid in GRIDS.items():
            runs = {label(c): replay(seed, c, encoder)[0] for c in grid}
            full = {name: score(seed, rows) for name, rows in runs.items()}
            best = max(runs, key=lambda n: (full[n]["f1"], -list(runs).index(n)))
            chosen[rule] = grid[list(runs).index(best)]
            seed_result["rules"][rule] = {
                "grid": full,
                "chosen_on_all_seed": best,
                "full_set_at_chosen": full[best],
                "cross_validated": cross_validate(seed, runs, fold_of),
            }
            cv = seed_result["rules"][rule]["cross_validated"]
            print(
                f"seed {rule}: best {best} F1 {full[best]['f1']} (lexical "
                f"{seed_result['lexical']['f1']}); CV F1 {cv['f1']} P {cv['p']} R {cv['r']}"
            )
        combined = dataclasses.replace(
            chosen["rerank"],
            veto=chosen["veto"].veto,
            veto_floor=chosen["veto"].veto_floor,
            veto_drop=chosen["veto"].veto_drop,
            admit=chosen["admit"].admit,
            admit_floor=chosen["admit"].admit_floor,
            admit_similarity=chosen["admit"].admit_similarity,
            admit_lead=chosen["admit"].admit_lead,
            learn_leads=any(c.learn_leads for c in chosen.values()),
        )
        chosen["all"] = combined
        seed_result["all"] = {
            "config": label(combined),
            **score(seed, replay(seed, combined, encoder)[0]),
        }
        print(f"seed all: {seed_result['all']}")
        results["sets"]["seed"] = seed_result
        encoder.save()
    else:
        chosen = {rule: grid[len(grid) // 2] for rule, grid in GRIDS.items()}
    only = set(args.only.split(",")) if args.only else set(chosen)
    for name in ("t17", "hamborg"):
        protocol = protocols.get(name)
        if protocol is None:
            continue
        out: dict[str, Any] = {}
        rows, seconds = replay(protocol, None, None)
        out["lexical"] = {**score(protocol, rows), "seconds": round(seconds, 1)}
        print(f"{name} lexical: {out['lexical']}", flush=True)
        configs = {**chosen, **{f"{r}-moderate": c for r, c in MODERATE.items()}}
        for rule, config in configs.items():
            if rule.split("-")[0] not in only:
                continue
            rows, seconds = replay(protocol, config, encoder)
            out[rule] = {
                "config": label(config),
                **score(protocol, rows),
                "seconds": round(seconds, 1),
                "embedded": REPLAY_STATS["embedded"],
            }
            print(f"{name} {rule}: {out[rule]}", flush=True)
            encoder.save()
        results["sets"][name] = out
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    return 0


def dump(protocol: TrackingProtocol, lexical_rows: Sequence[Row], encoder: EncodeFn) -> None:
    """Per item: verdict, gold, lexical story, top 3 (story: lexical score / cosine)."""
    semantic = SemanticMatcher(protocol.stories, OFF, Embedder(encoder))
    system = [SystemItem(r.id, r.story, False) for r in lexical_rows]
    mapping = map_stories(system, list(protocol.gold))
    for row, gold, article in zip(lexical_rows, protocol.gold, protocol.stream, strict=True):
        ok = mapping.get(row.story) == gold.story if row.story else gold.story is None
        vector = semantic.embed(article.title, article.text)
        tops = " ".join(
            f"{mapping.get(s) or s[:12]}:{sc:.2f}/{semantic.similarity(s, vector):.2f}"
            for s, sc, _ in row.top
        )
        sys_story = mapping.get(row.story) if row.story else None
        print(f"{'ok ' if ok else 'BAD'} {gold.id[:10]} gold={gold.story} sys={sys_story} {tops}")


def worker_rss(args: argparse.Namespace) -> int:
    """Peak RSS of a worker-sized process: the default corpus's stories, the model, and
    the seed stream replayed with leads learned (every article embedded, batched ahead)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    protocol = seed_protocol(args.data / SEED_FILE, args.corpus)
    encode = load_encoder(batch_size=32, max_tokens=args.max_tokens)
    rows, seconds = replay(protocol, COST_CONFIGS["admit-learn"], encode, prefetch=32)
    result = {
        "max_tokens": args.max_tokens,
        "peak_rss_mb_before_model": round(before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "seed_replay_seconds": round(seconds, 1),
        "seed": score(protocol, rows),
    }
    print(json.dumps(result, indent=2))
    return 0


COST_CONFIGS = {
    "lexical": None,
    "admit": MODERATE["admit"],
    "admit-learn": dataclasses.replace(MODERATE["admit"], admit_lead=0.15, learn_leads=True),
    "rerank": MODERATE["rerank"],
    "veto": MODERATE["veto"],
}


def cost(args: argparse.Namespace) -> int:
    """Live, no disk cache: load the model, time batched encoding of 256 T17 leads at 256
    and 128 word pieces, then replay the full T17 stream with one config (--only)."""
    name = args.only or "admit"
    config = COST_CONFIGS[name]
    encode: EncodeFn | None = None
    loaded, rss_model = 0.0, 0.0
    batched: dict[str, dict[str, float]] = {}
    protocol = t17_protocol(args.data)
    if config is not None:
        started = time.perf_counter()
        encode = load_encoder(batch_size=32, max_tokens=args.max_tokens)
        loaded = time.perf_counter() - started
        rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stride = len(protocol.stream) // 256
        leads = [lead_text(a.title, a.text) for a in protocol.stream[::stride]][:256]
        for tokens in (256, 128):
            encode_at = load_encoder(batch_size=32, max_tokens=tokens)
            started, cpu = time.perf_counter(), time.process_time()
            encode_at(leads)
            one_started = time.perf_counter()
            for lead in leads[:64]:
                encode_at([lead])
            batched[f"max_tokens_{tokens}"] = {
                "batched_ms_per_article": round(1000 * (one_started - started) / len(leads), 1),
                "batched_cpu_ms_per_article": round(
                    1000 * (time.process_time() - cpu) / len(leads), 1
                ),
                "one_at_a_time_ms_per_article": round(
                    1000 * (time.perf_counter() - one_started) / 64, 1
                ),
            }
        del encode_at
    counting = DiskCachedEncoder(encode, None)
    started_cpu = time.process_time()
    rows, seconds = replay(protocol, config, counting if config else None, prefetch=args.prefetch)
    cpu_seconds = time.process_time() - started_cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "config": label(config) if config else "lexical",
        "max_tokens": args.max_tokens,
        "prefetch": args.prefetch,
        "model_load_seconds": round(loaded, 1),
        "peak_rss_mb_after_model_load": round(rss_model),
        "peak_rss_mb": round(rss),
        "encoding_256_leads": batched,
        "texts_encoded_in_replay": counting.encoded,
        "articles_embedded_by_review": REPLAY_STATS.get("embedded", 0),
        "replay_encode_seconds": round(counting.seconds, 1),
        "t17_full_replay_seconds": round(seconds, 1),
        "t17_full_replay_cpu_seconds": round(cpu_seconds, 1),
        "t17_full": score(protocol, rows),
    }
    print(json.dumps(result, indent=2))
    if args.output.name != "semantic_match.json":
        args.output.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
