"""Surges: a story that suddenly draws many more reports than usual has developed.

What this module is for: catching the developments that lexical novelty cannot see. A
verdict, an admission or a resignation is told in words the story already knows ("Murray
found guilty", "Putin admits Russian missiles hit the plane"): no sentence brings an
unseen name or figure, yet every outlet reports it the same day. Counting a story's
matched reports per publication day and comparing today with the story's usual rate is
the classic burst signal of event detection (Kleinberg 2002; TDT on-line detection).

How: a story's reports are counted per day (UTC, from the articles' publication time).
A day is a surge when its reports reach both `SurgeConfig.min_reports` and `factor` times
the story's mean daily reports over the `days` before it. The tracker raises at most one
alert per story per day, so a surge on a day that already had a development adds nothing.

What it must not do: decide topic or novelty, read clocks (days come from the articles),
or do I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from worker.utc import as_utc


def publication_day(published: datetime) -> date:
    """The day a report counts for: its publication day, in UTC when the time has a zone."""
    return as_utc(published).date()


@dataclass(frozen=True, slots=True)
class SurgeConfig:
    """- `min_reports`: reports in one day below which no day is a surge (one outlet's
       story, or two, is not a wave).
    - `factor`: how many times its usual daily reports a story must draw that day.
    - `days`: the days before it whose mean is the usual rate.
    - `enabled`: False turns surges off; novelty alone then decides.
    """

    min_reports: int = 2
    factor: float = 2.0
    days: int = 28
    enabled: bool = True


@dataclass(slots=True)
class ReportVolume:
    """Reports per publication day of one story, kept for the days a surge looks back."""

    days: int
    counts: Counter[date] = field(default_factory=Counter)
    latest: date | None = None

    def add(self, day: date) -> None:
        self.counts[day] += 1
        if self.latest is None or day > self.latest:
            self.latest = day
            # A surge is judged for days down to `latest - days` (see `surge`), whose
            # windows reach back `days` more: older days can never be read again.
            horizon = day - timedelta(days=2 * self.days)
            for old in [d for d in self.counts if d < horizon]:
                del self.counts[old]

    def silent_days(self, day: date, since: date | None = None) -> int | None:
        """Days without a report before `day` (none on `day` either), counted from the
        story's last report or from `since` (the day its corpus is known as of),
        whichever is later; None when there was a report in that time, when a later
        report was already counted (a late backlog report ends no silence), or when
        there is nothing to count from."""
        if self.counts.get(day) or (self.latest is not None and day < self.latest):
            return None
        last = max((d for d in (self.latest, since) if d is not None), default=None)
        return None if last is None or last >= day else (day - last).days

    def usual(self, day: date) -> float:
        """Mean daily reports over the `days` before `day`."""
        window = (self.counts.get(day - timedelta(days=i), 0) for i in range(1, self.days + 1))
        return sum(window) / self.days

    def surge(self, day: date, config: SurgeConfig) -> tuple[int, float] | None:
        """(reports that day counting one more, usual rate) when one more report makes the
        day a surge; None otherwise."""
        if not config.enabled:
            return None
        if self.latest is not None and day < self.latest - timedelta(days=self.days):
            return None  # a late backlog report: its days are no longer counted
        reports = self.counts.get(day, 0) + 1
        usual = self.usual(day)
        if reports >= config.min_reports and reports >= config.factor * usual:
            return reports, usual
        return None
