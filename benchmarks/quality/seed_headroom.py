"""Where seed-followups developments are lost, and whether the signals we lack could find them.

Issue 13 asks development precision and recall >= 0.85 on seed-followups dev. Before any
rule is tuned toward that, this benchmark replays dev once, exactly as `storywatch eval`
does (default configuration), and measures what any novelty judge could reach on top of
the current matching:

- `cut by corpus dates`: developments whose every correctly matched report is published
  by its story's `known_as_of` (the corpus dates issue 13 fixes): no system may alert them;
- `lost by matching`: developments none of whose reports is matched to their story;
- `reachable`: the rest. A perfect novelty judge alerts each exactly once: that is the
  recall ceiling. It judges novelty against the matched story, so it also alerts every
  wrong-story match published after the cutoff: that bounds precision.

Then it measures the signals issue 13 names as separators (ROC AUC, 0.5 is chance):

- semantics: the cosine (all-MiniLM-L6-v2, the story embeddings of
  `worker.decide.semantic`) of each unmatched on-topic report to its gold story, against
  the cosine of each off-topic report to the story it is nearest to. Embeddings could
  only admit the first without the second if this AUC were near 1;
- words: the same comparison with the lexical cosine (rarity-weighted terms, before the
  matcher's name and support rules clip it): could a lower threshold or looser rules
  admit them?
- relative dates: whether the lead (title and three sentences) dates an event within
  `RECENT_DAYS` before publication ("on Wednesday", "Dec. 26", "yesterday"), for every
  report matched to its gold story: developments against rehashes.

    .venv/bin/python benchmarks/quality/seed_headroom.py [--data DIR] [--no-embeddings]

Writes benchmarks/results/seed_headroom.json. About 30 s (most of it loading the model).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storyeval.metrics import SystemItem, development_scores, map_stories  # noqa: E402
from storyeval.report import REPO, default_data_dir  # noqa: E402
from storyeval.sets import SEED_FILE, TrackingProtocol, seed_protocol  # noqa: E402
from worker.decide.match import article_view  # noqa: E402
from worker.decide.novelty import article_sentences  # noqa: E402
from worker.decide.replay import replay  # noqa: E402
from worker.decide.tracker import Tracker, TrackerConfig  # noqa: E402
from worker.models import Article  # noqa: E402
from worker.utc import as_utc  # noqa: E402

RECENT_DAYS = 2
LEAD = 4  # title and three sentences

_MONTH = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_MONTHS = {m: i for i, m in enumerate(_MONTH.replace("(?:", "").split("|"), 1)}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EVENT_DATE = re.compile(
    rf"\b(?:(?P<m1>{_MONTH})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\b"
    rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_MONTH})\b"
    rf"|(?P<weekday>{'|'.join(_WEEKDAYS)})|(?P<yesterday>yesterday)|(?P<today>today|tonight))",
    re.IGNORECASE,
)


def _month(name: str) -> int:
    key = name.lower()[:3]
    return next(number for prefix, number in _MONTHS.items() if prefix.startswith(key))


def event_dates(sentence: str, published: date) -> list[date]:
    """Days a sentence dates an event, resolved against the publication day: a weekday is
    the latest such day on or before it, "Dec. 26" the latest Dec. 26 not after it."""
    found: list[date] = []
    for match in _EVENT_DATE.finditer(sentence):
        if match["weekday"]:
            back = (published.weekday() - _WEEKDAYS.index(match["weekday"].lower())) % 7
            found.append(published - timedelta(days=back))
        elif match["yesterday"]:
            found.append(published - timedelta(days=1))
        elif match["today"]:
            found.append(published)
        else:
            month, day = _month(match["m1"] or match["m2"]), int(match["d1"] or match["d2"])
            for year in (published.year, published.year - 1):
                try:
                    candidate = date(year, month, day)
                except ValueError:
                    break
                if candidate <= published + timedelta(days=1):
                    found.append(candidate)
                    break
    return found


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """ROC AUC (Mann-Whitney): the chance a positive outscores a negative, ties half."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 3)


def ceilings(protocol: TrackingProtocol, outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    system = [SystemItem(o["id"], o["story"], bool(o["new_development"])) for o in outputs]
    gold = list(protocol.gold)
    mapping = map_stories(system, gold)
    known_as_of = {s.id: s.known_as_of for s in protocol.stories}
    every = {d for g in gold for d in g.developments}
    reachable: set[str] = set()
    cut: set[str] = set()
    wrong_after_cutoff = 0
    for article, output, item in zip(protocol.stream, outputs, gold, strict=True):
        story = output["story"]
        if story is None:
            continue
        cutoff = known_as_of.get(story)
        after = not (cutoff and article.when and as_utc(article.when) <= as_utc(cutoff))
        if mapping.get(story) != item.story or item.story is None:
            wrong_after_cutoff += after
        elif item.developments:
            (reachable if after else cut).update(item.developments)
    cut -= reachable
    lost = every - reachable - cut
    system_scores = development_scores(system, gold, mapping)
    alerts = len(reachable) + wrong_after_cutoff
    return {
        "developments": len(every),
        "system": {"precision": system_scores.precision, "recall": system_scores.recall},
        "cut_by_corpus_dates": sorted(cut),
        "lost_by_matching": sorted(lost),
        "reachable": len(reachable),
        "recall_ceiling": round(len(reachable) / len(every), 3) if every else None,
        "wrong_story_matches_after_cutoff": wrong_after_cutoff,
        "precision_ceiling": round(len(reachable) / alerts, 3) if alerts else None,
    }


def date_signal(protocol: TrackingProtocol, outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    system = [SystemItem(o["id"], o["story"], bool(o["new_development"])) for o in outputs]
    mapping = map_stories(system, list(protocol.gold))
    recent: dict[str, list[float]] = {"new_development": [], "rehash": []}
    for article, output, item in zip(protocol.stream, outputs, protocol.gold, strict=True):
        story = output["story"]
        if story is None or mapping.get(story) != item.story or article.published is None:
            continue
        if item.label not in recent:
            continue
        day = article.published.date()
        dated = [
            found
            for sentence in article_sentences(article.title, article.text)[:LEAD]
            for found in event_dates(sentence, day)
        ]
        recent[item.label].append(float(any((day - d).days <= RECENT_DAYS for d in dated)))
    return {
        "recent_days": RECENT_DAYS,
        "share_with_recent_event_date": {
            label: round(sum(v) / len(v), 3) if v else None for label, v in recent.items()
        },
        "reports": {label: len(v) for label, v in recent.items()},
        "auc": auc(recent["new_development"], recent["rehash"]),
    }


Similarity = Callable[[Tracker, Article], dict[str, float]]


def lexical_similarities(tracker: Tracker, article: Article) -> dict[str, float]:
    """Per story, the plain cosine of rarity-weighted terms (no name or support rule)."""
    view = article_view(article.title, article.text, tracker.config.match)
    profiles = tracker._profiles  # the matcher's own profiles, as they stand
    return {
        story_id: math.fsum(w * profile.weights.get(t, 0.0) for t, w in view.vector.items())
        / (view.norm * profile.norm())
        for story_id, profile in profiles.items()
    }


def semantic_similarities(tracker: Tracker, article: Article) -> dict[str, float]:
    matcher = tracker._semantic  # the story embeddings the service would use
    assert matcher is not None
    return matcher.similarities(matcher.embed(article.title, article.text))


def separation(
    protocol: TrackingProtocol,
    outputs: Sequence[Mapping[str, Any]],
    similarities: Similarity,
    *,
    embeddings: bool,
) -> dict[str, Any]:
    """Similarity of unmatched on-topic reports to their gold story against off-topic
    reports' similarity to their nearest story, along a replay with the default config."""
    config = TrackerConfig()
    if embeddings:
        config = replace(config, semantic=replace(config.semantic, enabled=True))
    tracker = Tracker(protocol.stories, config)
    system = [SystemItem(o["id"], o["story"], bool(o["new_development"])) for o in outputs]
    mapping = map_stories(system, list(protocol.gold))
    system_of = {g: s for s, g in mapping.items() if g is not None}
    unmatched: list[float] = []
    off_topic: list[float] = []
    for article, output, item in zip(protocol.stream, outputs, protocol.gold, strict=True):
        decision = tracker.decide(article)
        if item.story is None:
            off_topic.append(max(similarities(tracker, article).values()))
        elif output["story"] is None and item.story in system_of:
            unmatched.append(similarities(tracker, article)[system_of[item.story]])
        tracker.learn(article, decision)
    return {
        "unmatched_on_topic": len(unmatched),
        "off_topic": len(off_topic),
        "unmatched_to_gold_story": sorted(round(v, 3) for v in unmatched),
        "off_topic_above_median_unmatched": sum(
            v >= sorted(unmatched)[len(unmatched) // 2] for v in off_topic
        )
        if unmatched
        else None,
        "auc": auc(unmatched, off_topic),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--corpus", type=Path, default=REPO / "config" / "corpus")
    parser.add_argument("--no-embeddings", action="store_true", help="skip the semantic signal")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "seed_headroom.json"
    )
    args = parser.parse_args()

    protocol = seed_protocol(args.data / SEED_FILE, args.corpus)
    outputs = list(replay(Tracker(protocol.stories, TrackerConfig()), protocol.stream))
    payload: dict[str, Any] = {
        "set": "seed",
        "ceilings": ceilings(protocol, outputs),
        "relative_dates": date_signal(protocol, outputs),
        "words": separation(protocol, outputs, lexical_similarities, embeddings=False),
    }
    if not args.no_embeddings:
        payload["semantics"] = separation(protocol, outputs, semantic_similarities, embeddings=True)
    print(json.dumps(payload, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
