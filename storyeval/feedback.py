"""What feedback changes: a labelled stream replayed twice, once as is and once with a
simulated person who answers the first wrong alert of each story, as the desk lets them.

The person's verdict comes from the gold labels: "wrong story" when the alert's story is
not the item's gold story (an off-topic item included), else "not new" (a rehash, or a
second alert on a development already alerted). What the verdicts do is what the service
does (`worker.pipeline.feedback`): a wrong story is unlearned (the tracker is rebuilt
from what it learned, without that article, as every worker rebuilds it from the
database) and rejected (`Tracker.reject`); a not-new verdict makes the story ask more of
a claim (`Tracker.not_new`). Both runs are scored alike: alerts after each story's
feedback, right and wrong, and the right alerts the feedback run lost.

Each wrong alert left after its story's feedback is listed with the verdict it would get
itself and the right alerts of its story, after the feedback, that score no higher on
both match and novelty (`LaterWrong.shadowed`): any rule asking more of the story's
scores that dropped the wrong alert would drop those right alerts too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from storyeval.metrics import GoldItem, SystemItem, credit, map_stories
from storyeval.sets import TrackingProtocol
from worker.decide.tracker import Tracker, TrackerConfig
from worker.models import Article, Decision


@dataclass(frozen=True, slots=True)
class Learned:
    """One learned article, as the database keeps it (facts, report, development)."""

    story_id: str
    article_id: str
    facts: tuple[str, ...]
    when: datetime | None
    development: Decision | None


@dataclass
class Run:
    alerts: list[tuple[int, str, bool]] = field(default_factory=list)  # (position, story, right)
    verdicts: list[tuple[int, str, str]] = field(default_factory=list)  # (position, story, verdict)
    scores: dict[int, tuple[float, float]] = field(default_factory=dict)  # match, novelty
    kinds: dict[int, str] = field(default_factory=dict)  # a wrong alert's own verdict


@dataclass(frozen=True, slots=True)
class LaterWrong:
    """A wrong alert after its story's feedback (see the module's docstring)."""

    item_id: str
    story_id: str
    answered: str  # the verdict the story's first wrong alert received
    kind: str  # the verdict this alert would receive
    match: float
    novelty: float
    shadowed: tuple[str, ...]  # right alerts of the story after feedback, no higher on both


@dataclass(frozen=True, slots=True)
class Effect:
    verdicts: tuple[tuple[str, str, str], ...]  # (item id, system story, verdict)
    wrong_after_without: int  # wrong alerts after each story's first wrong alert
    wrong_after_with: int
    right_without: int
    right_with: int
    right_lost: tuple[str, ...]  # item ids alerted rightly without feedback, not with it
    right_gained: tuple[str, ...]
    later_wrong: tuple[LaterWrong, ...] = ()

    @property
    def wrong_fall(self) -> float:
        before = self.wrong_after_without
        return (before - self.wrong_after_with) / before if before else 0.0


def _rebuilt(
    protocol: TrackingProtocol,
    config: TrackerConfig,
    log: list[Learned],
    unlearned: set[tuple[str, str]],
    rejected: list[tuple[str, Article]],
    not_new: list[str],
) -> Tracker:
    """The tracker as a worker restores it from the database after feedback."""
    tracker = Tracker(protocol.stories, config)
    for entry in log:
        if (entry.story_id, entry.article_id) in unlearned:
            continue
        tracker.add_facts(entry.story_id, entry.facts)
        tracker.add_report(entry.story_id, entry.when)
        if entry.development is not None:
            decision = entry.development
            tracker.add_development(
                entry.story_id,
                entry.article_id,
                decision.specifics,
                entry.when,
                surge=decision.surge,
            )
    for story_id, article in rejected:
        tracker.reject(story_id, article.title, article.text)
    for story_id in not_new:
        tracker.not_new(story_id)
    return tracker


def _replay(
    protocol: TrackingProtocol,
    config: TrackerConfig,
    mapping: dict[str, str | None] | None,
    *,
    answer: bool,
    every: bool = False,
    matches: bool = False,
) -> tuple[list[SystemItem], Run]:
    """Decide and learn the stream, scoring alerts with `mapping`; with `answer`, answer
    each story's first wrong alert as the gold labels say. With `matches`, every match
    is judged instead of every alert (right when the story is the item's gold story),
    and a wrong one is answered "wrong story": for sets labelled with stories only."""
    tracker = Tracker(protocol.stories, config)
    log: list[Learned] = []
    unlearned: set[tuple[str, str]] = set()
    rejected: list[tuple[str, Article]] = []
    not_new: list[str] = []
    answered: set[str] = set()
    credited: set[str] = set()
    run = Run()
    system: list[SystemItem] = []
    for position, (article, gold) in enumerate(zip(protocol.stream, protocol.gold, strict=True)):
        decision = tracker.decide(article)
        facts = tracker.learn(article, decision)
        story = decision.match.story_id if decision.match else None
        system.append(SystemItem(article.id, story, decision.new_development))
        if story is None:
            continue
        log.append(
            Learned(
                story,
                article.id,
                facts,
                article.when,
                decision if decision.new_development else None,
            )
        )
        if matches:
            right = mapping is None or mapping.get(story) == gold.story
        elif decision.new_development:
            right = _right(gold, story, mapping, credited)
        else:
            continue
        run.alerts.append((position, story, right))
        assert decision.match is not None
        novelty = decision.novelty.score if decision.novelty is not None else 0.0
        run.scores[position] = (decision.match.score, novelty)
        if right or mapping is None:
            continue
        verdict = "wrong-story" if mapping.get(story) != gold.story else "not-new"
        run.kinds[position] = verdict
        if not answer or (story in answered and not every):
            continue
        answered.add(story)
        if verdict == "wrong-story":
            unlearned.add((story, article.id))
            rejected.append((story, article))
        else:
            not_new.append(story)
        run.verdicts.append((position, story, verdict))
        tracker = _rebuilt(protocol, config, log, unlearned, rejected, not_new)
    return system, run


def _right(
    gold: GoldItem, story: str, mapping: dict[str, str | None] | None, credited: set[str]
) -> bool:
    """As `development_scores` credits an alert (mapping None: before any is known, the
    story maps to itself)."""
    return credit(gold, mapping.get(story) if mapping is not None else story, credited)


def story_mapping(protocol: TrackingProtocol, config: TrackerConfig) -> dict[str, str | None]:
    """Which gold story each system story stands for: itself when the set is labelled
    with the stories' own ids, else as the development scores map them after a replay
    without feedback."""
    if protocol.gold_ids:
        return {s.id: s.id for s in protocol.stories}
    baseline_system, _ = _replay(protocol, config, None, answer=False)
    return map_stories(baseline_system, list(protocol.gold))


def answered_run(
    protocol: TrackingProtocol, config: TrackerConfig, *, every: bool, matches: bool
) -> Run:
    """The replay with the simulated person's feedback, as `feedback_effect` makes it:
    its alerts (or matches), their scores and the verdicts given."""
    mapping = story_mapping(protocol, config)
    return _replay(protocol, config, mapping, answer=True, every=every, matches=matches)[1]


def feedback_effect(
    protocol: TrackingProtocol,
    config: TrackerConfig,
    *,
    every: bool = False,
    matches: bool = False,
) -> Effect:
    """The two replays compared. `every`: the person answers every wrong alert, not only
    each story's first (later wrong alerts are still counted from the first).
    `matches`: judge and answer matches rather than alerts (see `_replay`)."""
    mapping = story_mapping(protocol, config)
    _, without = _replay(protocol, config, mapping, answer=False, matches=matches)
    _, with_feedback = _replay(protocol, config, mapping, answer=True, every=every, matches=matches)
    # Each story's feedback point: where the person answered its first wrong alert (the
    # same item in both runs, since nothing differs before it).
    first_wrong: dict[str, int] = {}
    for position, story, _ in with_feedback.verdicts:
        first_wrong.setdefault(story, position)

    def wrong_after(run: Run) -> int:
        return sum(
            1
            for position, story, right in run.alerts
            if not right and story in first_wrong and position > first_wrong[story]
        )

    ids = [a.id for a in protocol.stream]
    right_without = {ids[p] for p, _, right in without.alerts if right}
    right_with = {ids[p] for p, _, right in with_feedback.alerts if right}
    answered = {story: verdict for _, story, verdict in reversed(with_feedback.verdicts)}
    return Effect(
        verdicts=tuple((ids[p], s, v) for p, s, v in with_feedback.verdicts),
        wrong_after_without=wrong_after(without),
        wrong_after_with=wrong_after(with_feedback),
        right_without=len(right_without),
        right_with=len(right_with),
        right_lost=tuple(sorted(right_without - right_with)),
        right_gained=tuple(sorted(right_with - right_without)),
        later_wrong=tuple(
            _later_wrong(with_feedback, ids, first_wrong, answered, position, story)
            for position, story, right in with_feedback.alerts
            if not right and story in first_wrong and position > first_wrong[story]
        ),
    )


def _later_wrong(
    run: Run,
    ids: list[str],
    first_wrong: dict[str, int],
    answered: dict[str, str],
    position: int,
    story: str,
) -> LaterWrong:
    match, novelty = run.scores[position]
    shadowed = tuple(
        ids[other]
        for other, other_story, right in run.alerts
        if right
        and other_story == story
        and other > first_wrong[story]
        and run.scores[other][0] <= match
        and run.scores[other][1] <= novelty
    )
    return LaterWrong(
        item_id=ids[position],
        story_id=story,
        answered=answered[story],
        kind=run.kinds[position],
        match=round(match, 3),
        novelty=round(novelty, 3),
        shadowed=shadowed,
    )
