"""The process's story tracker, kept in step with the database.

The Tracker (worker.decide.tracker) is cached in memory and brought up to date before
every decision: stories reload when their version changes, and the facts, developments
and reports other workers committed are read past per-story cursors
(worker.store.knowledge). The three ways a worker changes what stories know (`learn`,
`count_report`, `add_development`) write the rows and move the tracker and its cursors in
one step, so the cache never re-reads what it already holds and never misses what another
worker committed. A transaction that writes any of them also counts one more change of
the story (`stories.changes`, once: its rows commit together): a tracker reads a story's
rows only when that count moved, so a lone decider spends one small query per look
instead of three that find nothing.

The tracker keys articles by text (a corpus document is named by its file); stored
articles have integer ids, turned into text here and nowhere else.
"""

from __future__ import annotations

import threading
from datetime import datetime

from worker import models
from worker.decide.tracker import Tracker, TrackerConfig
from worker.errors import StoryBusy
from worker.models import Decision, Story
from worker.store import knowledge
from worker.store.engine import DbSession


def _advance(cursors: dict[str, int], story_id: str, row_id: int | None) -> None:
    """Move a story's cursor forward (a story rebuilt away has none)."""
    if row_id is not None and story_id in cursors:
        cursors[story_id] = max(cursors[story_id], row_id)


_VERSION = "storywatch_stories_version"  # Session.info key: the version this transaction read
_TOUCHED = "storywatch_touched_stories"  # Session.info key: stories this transaction counted
_LOCKED = "storywatch_locked_stories"  # Session.info key: stories this transaction holds
_NO_WAITING = "storywatch_no_waiting"  # Session.info key: lock only stories nobody holds
# Session.info key: the tracker caught up in this transaction after its last new lock.
_CAUGHT_UP = "storywatch_caught_up"


class TrackerCache:
    """The process's Tracker, synchronised with the database on demand.

    Call the writing methods in the transaction that holds the story's row lock
    (`lock_story`): `learn` and `count_report` under `lock` too (they change the shared
    tracker); `add_development` after `learn` remembered it.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracker: Tracker | None = None
        self._version: str | None = None
        self._fact_cursors: dict[str, int] = {}
        self._development_cursors: dict[str, int] = {}
        self._report_cursors: dict[str, int] = {}
        # Each story's change count (knowledge.touch) as of what the tracker holds: a story
        # whose count is unchanged has nothing to read.
        self._changes: dict[str, int] = {}
        self._stories: dict[str, Story] = {}
        self.lock = threading.RLock()

    def invalidate(self) -> None:
        self._tracker = None
        self._version = None

    def story(self, story_id: str) -> Story | None:
        return self._stories.get(story_id)

    def current(self, session: DbSession) -> Tracker:
        """The tracker as of this session's snapshot of stories and learned facts."""
        # One statement a call: the stories' version and change counts. The version is
        # taken once per transaction: an item asks for the tracker two or three times, and
        # the version changes only when the corpus is rebuilt or a verdict is given (the
        # next item sees it). The facts are caught up on every call. Counts first: a row
        # counted here was committed before, so the reads that follow see it; rows
        # committed in between are read too, and read past next time by the cursors.
        if self._tracker is not None and session.info.get(_CAUGHT_UP):
            # Caught up in this transaction, and no story locked since: what other
            # workers commit meanwhile about a story this transaction does not hold can
            # only inform a first look (decisions lock their story first), and nobody
            # else writes a story it holds.
            return self._tracker
        state = knowledge.stories_state(session)
        version = session.info.setdefault(_VERSION, state.version or "")
        if self._tracker is None or version != self._version:
            stories = knowledge.stored_stories(session)
            self._stories = {story.id: story for story in stories}
            self._tracker = Tracker(stories, self.config)
            self._version = version
            # What people said (worker.pipeline.desk): rejected reports and "not new"
            # verdicts. Each verdict bumps the version, so every worker rebuilds with it.
            rejections, not_new = knowledge.feedback_for_trackers(session)
            for rejection in rejections:
                self._tracker.reject(*rejection)
            for story_id, verdicts in not_new.items():
                for _ in range(verdicts):
                    self._tracker.not_new(story_id)
            self._fact_cursors = {story.id: 0 for story in stories}
            self._development_cursors = {story.id: 0 for story in stories}
            self._report_cursors = {story.id: 0 for story in stories}
            self._changes = {}
        session.info[_CAUGHT_UP] = True
        if not self._fact_cursors:
            return self._tracker
        changes = state.changes
        changed = [s for s in self._fact_cursors if changes.get(s) != self._changes.get(s)]
        if changed:
            self._read_rows(session, self._tracker, changed)
            self._changes.update({story_id: changes[story_id] for story_id in changed})
        return self._tracker

    def _read_rows(self, session: DbSession, tracker: Tracker, changed: list[str]) -> None:
        facts_after = {story_id: self._fact_cursors[story_id] for story_id in changed}
        developments_after = {s: self._development_cursors[s] for s in changed}
        reports_after = {story_id: self._report_cursors[story_id] for story_id in changed}
        pending: dict[str, list[knowledge.LearnedFact]] = {}
        for fact in knowledge.facts_after(session, facts_after):
            pending.setdefault(fact.story_id, []).append(fact)
        for story_id, facts in pending.items():
            tracker.add_facts(story_id, [fact.text for fact in facts])
            self._fact_cursors[story_id] = facts[-1].id
        # Developments other workers recorded, so this one recognises reports of them.
        for development in knowledge.developments_after(session, developments_after):
            tracker.add_development(
                development.story_id,
                str(development.article_id),
                development.specifics,
                development.published,
                surge=development.surge,
            )
            self._development_cursors[development.story_id] = development.id
        # Reports other workers counted (the stories' daily volume, worker.decide.surge),
        # and with embeddings on, the leads of the articles they decided (a copy is
        # counted, never decided, so it adds no lead: as `Tracker.learn` saw them).
        with_leads = self.config.semantic.enabled
        for report in knowledge.reports_after(session, reports_after, with_leads=with_leads):
            tracker.add_report(report.story_id, report.published)
            if report.lead is not None:
                tracker.add_lead(report.story_id, *report.lead)
            self._report_cursors[report.story_id] = report.id

    def _caught_up(self) -> Tracker:
        if self._tracker is None:
            raise RuntimeError("the tracker is learned into before it was read")
        return self._tracker

    def lock_story(self, session: DbSession, story_id: str) -> bool:
        """Hold the story's row until the transaction ends; False when it is gone. The
        next `current` catches up again: facts committed before the lock was taken."""
        held: set[str] = session.info.setdefault(_LOCKED, set())
        if story_id in held:
            return True
        locked = knowledge.lock_story(session, story_id, wait=not session.info.get(_NO_WAITING))
        if locked is None:
            raise StoryBusy(f"story {story_id} is locked by another transaction")
        if not locked:
            return False
        held.add(story_id)
        session.info[_CAUGHT_UP] = False
        return True

    def stop_waiting(self, session: DbSession) -> None:
        """From now on in this transaction, `lock_story` raises StoryBusy instead of
        waiting for a story another transaction holds (stories held already stay held)."""
        session.info[_NO_WAITING] = True

    def learn(
        self, session: DbSession, article: models.Article, decision: Decision, article_id: int
    ) -> None:
        """The matched story learns the article: its new fact sentences and one report."""
        assert decision.match is not None
        story_id = decision.match.story_id
        # No catching up first: the caller decided under the story's lock, after `current`
        # caught up, and nobody else can add this story's facts until the commit.
        learned = self._caught_up().learn(article, decision)
        # Counted as the tracker counted it (Tracker.learn): an undated report by when it
        # was first seen, so a restarted worker counts the same days.
        rows = knowledge.learn(session, story_id, article_id, learned, article.when)
        _advance(self._fact_cursors, story_id, rows.last_fact)
        _advance(self._report_cursors, story_id, rows.report)
        self._counted(session, story_id, rows.changes)

    def count_report(
        self, session: DbSession, story_id: str, article_id: int, published: datetime | None
    ) -> None:
        """One more report of the story that is not decided (a copy of one of its articles)."""
        tracker = self.current(session)
        report = knowledge.add_report(session, story_id, article_id, published)
        tracker.add_report(story_id, published)
        _advance(self._report_cursors, story_id, report)
        self._touch(session, story_id)

    def add_development(
        self, session: DbSession, decision: Decision, article_id: int, detected_at: datetime
    ) -> int:
        """Record the development of a decision `learn` already remembered in memory;
        returns its id."""
        assert decision.match is not None
        development = knowledge.add_development(session, decision, article_id, detected_at)
        _advance(self._development_cursors, decision.match.story_id, development)
        self._touch(session, decision.match.story_id)
        return development

    def _touch(self, session: DbSession, story_id: str) -> None:
        """Count the change just written, once a transaction (one more count tells other
        workers the story's rows moved; a second in the same commit tells them nothing)."""
        if story_id not in session.info.get(_TOUCHED, ()):
            self._counted(session, story_id, knowledge.touch(session, story_id))

    def _counted(self, session: DbSession, story_id: str, changes: int | None) -> None:
        """The story's change count is now `changes`, counted by this transaction. The
        caller holds the story's lock and the tracker caught up after taking it, so the
        count before this one was already ours."""
        session.info.setdefault(_TOUCHED, set()).add(story_id)
        if changes is not None and story_id in self._changes:
            self._changes[story_id] = changes
