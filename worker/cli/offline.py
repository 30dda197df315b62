"""Offline commands: `storywatch stories`, `replay`, `check` and `eval`.

They need a corpus (and `check` the service's database, read-only, when there is one;
`eval` the evaluation data), never a broker. Each imports what it runs when it runs, so
`storywatch --help` and the service commands never load the tracker or the harness.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from worker.errors import ConfigError, ExtractionError, FetchError
from worker.models import Article, Decision, Story
from worker.settings import load_settings, max_response_bytes

if TYPE_CHECKING:
    from worker.decide.tracker import Tracker, TrackerConfig


_CORPUS_HELP = (
    "build the stories from this folder alone, without stories.toml "
    "(default: the configured corpus, with stories.toml)"
)


def register(commands: Any) -> None:
    """Add stories, replay and check to the `storywatch` subcommands."""
    stories = commands.add_parser("stories", help="show the stories built from the corpus")
    stories.add_argument("--corpus", type=Path, help=_CORPUS_HELP)
    stories.add_argument("--json", action="store_true", help="print JSON")
    stories.set_defaults(handler=_stories)

    replay = commands.add_parser(
        "replay", help="decide a JSONL stream of articles offline, as the service would"
    )
    replay.add_argument(
        "input", type=Path, help="JSONL rows: id, title, text, published, url, source"
    )
    replay.add_argument("--corpus", type=Path, help=_CORPUS_HELP)
    replay.add_argument("--output", type=Path, help="write decisions here (default: stdout)")
    replay.set_defaults(handler=_replay)

    check = commands.add_parser(
        "check",
        help="fetch or read one article and explain the decision the service would make now",
    )
    check.add_argument("target", help="an http(s) URL, or a file (HTML or plain text)")
    check.add_argument(
        "--corpus",
        type=Path,
        help="build the stories from this folder alone, without stories.toml or the "
        "database (default: what the service learned, from its database, read-only; "
        "the configured corpus when there is none yet)",
    )
    check.set_defaults(handler=_check)


def register_eval(commands: Any) -> None:
    """Add eval to the `storywatch` subcommands."""
    evaluate = commands.add_parser(
        "eval", help="measure story intelligence on the labelled sets, full-set and cross-validated"
    )
    evaluate.add_argument(
        "--data", type=Path, help="evaluation data (default: $STORYWATCH_EVAL_DATA, ../shared/data)"
    )
    evaluate.add_argument(
        "--sets",
        default="seed,t17,t17-one-folder,trec,hamborg",
        help="comma-separated: seed,t17,t17-one-folder,trec,hamborg",
    )
    evaluate.add_argument(
        "--output-dir", type=Path, help="results folder (default: benchmarks/results)"
    )
    evaluate.add_argument(
        "--plots",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sweep the thresholds and draw PNG plots (needs the `eval` extra)",
    )
    evaluate.add_argument("--corpus", type=Path, help="seed corpus (default: config/corpus)")
    evaluate.add_argument(
        "--embeddings",
        action="store_true",
        help="decide with sentence embeddings on (default: as STORYWATCH_EMBEDDINGS says)",
    )
    evaluate.add_argument("--jobs", type=int, default=2, help="processes for threshold sweeps")
    evaluate.set_defaults(handler=_eval)


# ---------------------------------------------------------------------------------------
# Offline commands


def _offline_stories(corpus: Path | None) -> list[Story]:
    """Stories from `corpus` alone (stories.toml edits name stories of the configured
    corpus, so they are not applied), or from the configured corpus with stories.toml."""
    from worker.stories.corpus import build_stories  # noqa: PLC0415
    from worker.stories.folder import read_corpus  # noqa: PLC0415

    if corpus is not None:
        if not corpus.is_dir():
            raise ConfigError([f"--corpus: {corpus} is not a directory"])
        return build_stories(read_corpus(corpus))
    from worker.stories.rules import routing_problems  # noqa: PLC0415

    settings = load_settings(service=False)
    stories = build_stories(
        read_corpus(settings.corpus_dir), settings.story_rules, known_as_of=settings.known_as_of
    )
    # A warning here, an error at init/run: `stories` is how a user finds the right ids.
    for problem in routing_problems(stories, settings.destinations):
        print(f"storywatch: warning: {problem}", file=sys.stderr)
    return stories


def _offline_config() -> TrackerConfig:
    """The default knobs, with embeddings as STORYWATCH_EMBEDDINGS says (as the service)."""
    from worker.decide.semantic import SemanticConfig  # noqa: PLC0415
    from worker.decide.tracker import TrackerConfig  # noqa: PLC0415
    from worker.settings import embeddings_enabled  # noqa: PLC0415

    return TrackerConfig(semantic=SemanticConfig(enabled=embeddings_enabled()))


def _story_row(story: Story) -> dict[str, object]:
    """DESIGN §4's fields; `known_as_of` only for a dated story (by its documents'
    `Date:` lines or stories.toml)."""
    row: dict[str, object] = {
        "id": story.id,
        "title": story.title,
        "key_terms": list(story.key_terms),
        "documents": list(story.documents),
        "facts": list(story.facts),
    }
    if story.known_as_of:
        row["known_as_of"] = story.known_as_of.isoformat()
    return row


def _stories(args: argparse.Namespace, _extra: list[str]) -> int:
    stories = _offline_stories(args.corpus)
    if args.json:
        rows = [_story_row(s) for s in stories]
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    for story in stories:
        print(f"{story.id}\n  {story.title}")
        print(f"  documents: {', '.join(story.documents)}")
        print(f"  key terms: {', '.join(story.key_terms)}")
        print(f"  known facts: {len(story.facts)}")
        if story.known_as_of:
            print(f"  known as of: {story.known_as_of.isoformat()}")
        print()
    print(f"{len(stories)} stories")
    return 0


def _replay(args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.decide.replay import read_articles, replay  # noqa: PLC0415
    from worker.decide.tracker import Tracker  # noqa: PLC0415

    if not args.input.is_file():
        print(f"storywatch: {args.input}: no such file", file=sys.stderr)
        return 2
    # All state lives in this process's memory and dies with it: never the service's DB.
    tracker = Tracker(_offline_stories(args.corpus), _offline_config())
    out: TextIO = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    count = alerts = 0
    try:
        with args.input.open(encoding="utf-8") as handle:
            rows = (
                _json_row(line, number) for number, line in enumerate(handle, 1) if line.strip()
            )
            for decision in replay(tracker, read_articles(rows)):
                out.write(json.dumps(decision, ensure_ascii=False) + "\n")
                count += 1
                alerts += bool(decision["new_development"])
    finally:
        if args.output:
            out.close()
    print(f"replayed {count} articles: {alerts} new developments", file=sys.stderr)
    return 0


def _json_row(line: str, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"input line {number}: not JSON: {exc.msg}"]) from exc
    if not isinstance(row, dict):
        raise ConfigError([f"input line {number}: expected a JSON object"])
    return row


def _eval(args: argparse.Namespace, _extra: list[str]) -> int:
    from storyeval.harness import SET_NAMES  # noqa: PLC0415 - keeps other commands light
    from storyeval.report import (  # noqa: PLC0415
        REPO,
        default_data_dir,
        plotting_available,
        run_evaluation,
    )

    sets = [name.strip() for name in args.sets.split(",") if name.strip()]
    problems = [f"--sets: unknown set {name!r}" for name in sets if name not in SET_NAMES]
    data_dir = args.data or default_data_dir()
    corpus_dir = args.corpus or REPO / "config" / "corpus"
    if not data_dir.is_dir():
        problems.append(f"--data: {data_dir} is not a directory")
    if "seed" in sets and not corpus_dir.is_dir():
        problems.append(f"--corpus: {corpus_dir} is not a directory")
    if args.plots and not plotting_available():
        problems.append("--plots needs matplotlib: pip install 'storywatch[eval]', or --no-plots")
    if problems:
        raise ConfigError(problems)
    config = _offline_config()
    if args.embeddings:
        config = replace(config, semantic=replace(config.semantic, enabled=True))
    run_evaluation(
        data_dir,
        corpus_dir,
        sets,
        args.output_dir or REPO / "benchmarks" / "results",
        plots=args.plots,
        jobs=max(1, args.jobs),
        out=sys.stdout,
        config=config,
    )
    return 0


def _check(args: argparse.Namespace, _extra: list[str]) -> int:
    from worker.articles.extract import extract_page  # noqa: PLC0415

    try:
        article = _read_target(args.target, extract_page)
    except (FetchError, ExtractionError, OSError) as exc:
        print(f"storywatch: {exc}", file=sys.stderr)
        return 2
    tracker, knowledge = _check_tracker(args.corpus)
    print(knowledge)
    if article.published is None:
        # As the service dates an undated report: by when it is seen, now.
        article = replace(article, seen=datetime.now(UTC))
    decision = tracker.decide(article)
    _explain(article, decision, tracker)
    return 0


def _check_tracker(corpus: Path | None) -> tuple[Tracker, str]:
    """The tracker check decides with, and the line that says where its knowledge is from:
    the service's database (read-only) unless --corpus asks for a corpus, or the database
    has nothing to answer from yet."""
    from worker.decide.tracker import Tracker  # noqa: PLC0415
    from worker.pipeline.knowledge import Knowledge, restore_knowledge  # noqa: PLC0415
    from worker.pipeline.runtime import tracker_config  # noqa: PLC0415

    if corpus is not None:
        stories = _offline_stories(corpus)
        return Tracker(stories, _offline_config()), f"answering from the corpus only ({corpus})"
    settings = load_settings(service=False)
    learned = restore_knowledge(settings.database_url, tracker_config(settings))
    if isinstance(learned, Knowledge):
        return learned.tracker, (
            f"answering from the service database ({learned.database}): "
            f"{learned.stories:,} stories, {learned.learned_facts:,} learned facts, "
            f"{learned.developments:,} developments"
        )
    return Tracker(_offline_stories(None), _offline_config()), (
        f"answering from the corpus only ({settings.corpus_dir}): "
        f"the service database ({learned.database}) {learned.reason}"
    )


def _read_target(target: str, extract_page: Any) -> Article:
    path = Path(target)
    if not target.startswith(("http://", "https://")) and path.is_file():
        raw = _read_capped(path, max_response_bytes())
        if raw.lstrip()[:1] == b"<":
            page = extract_page(raw, url=path.resolve().as_uri())
            return Article(id=target, title=page.title, text=page.text, source=page.source)
        return Article(id=target, title=None, text=raw.decode("utf-8", errors="replace"))
    if not target.startswith(("http://", "https://")):
        raise OSError(f"{target}: neither an http(s) URL nor a readable file")
    from worker.fetch.net import GuardedClient  # noqa: PLC0415

    settings = load_settings(service=False)
    with GuardedClient(settings.fetch_policy()) as client:
        result = client.get(target, accept="text/html,application/xhtml+xml")
    page = extract_page(result.body, url=result.url, headers=result.headers)
    return Article(
        id=target,
        title=page.title,
        text=page.text,
        url=result.url,
        source=page.source,
        published=page.published,
    )


def _read_capped(path: Path, limit: int) -> bytes:
    """A file's bytes, refused past the size the service would fetch of a page (its
    whole text would be read into memory and tokenised)."""
    with path.open("rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise OSError(
            f"{path}: larger than STORYWATCH_MAX_RESPONSE_BYTES ({limit} bytes), "
            "the most the service reads of a page"
        )
    return raw


def _explain(article: Article, decision: Decision, tracker: Any) -> None:
    print(f"article: {article.title or article.id}")
    if article.url:
        print(f"url: {article.url}")
    print(f"text: {len(article.text)} characters")
    if decision.match is None:
        print("decision: no tracked story matches")
        return
    story = tracker.story(decision.match.story_id)
    print(f"story: {story.id} ({story.title})")
    print(f"match score: {decision.match.score:.3f}")
    for reason in decision.match.reasons:
        print(f"  - {reason}")
    novelty = decision.novelty
    verdict = "NEW DEVELOPMENT" if decision.new_development else "nothing new (rehash)"
    print(f"decision: {verdict}" + (f" (novelty {novelty.score:.3f})" if novelty else ""))
    if novelty:
        for reason in novelty.reasons:
            print(f"  - {reason}")
        for fact in novelty.new_facts:
            print(f"  new: {fact}")
