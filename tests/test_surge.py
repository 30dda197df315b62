"""Surges: a day's reports against the story's usual daily rate."""

from datetime import date, timedelta

from worker.decide.surge import ReportVolume, SurgeConfig

CONFIG = SurgeConfig(min_reports=2, factor=2.0, days=28)
DAY = date(2011, 11, 7)


def volume_with(per_day: dict[int, int]) -> ReportVolume:
    """Reports `per_day[n]` on DAY - n days."""
    volume = ReportVolume(CONFIG.days)
    for offset in sorted(per_day, reverse=True):
        for _ in range(per_day[offset]):
            volume.add(DAY - timedelta(days=offset))
    return volume


def test_a_quiet_story_surges_on_its_second_report_of_the_day():
    volume = volume_with({20: 1, 9: 1, 0: 1})
    assert volume.surge(DAY, CONFIG) == (2, 2 / 28)


def test_one_report_is_never_a_surge():
    assert volume_with({}).surge(DAY, CONFIG) is None


def test_a_busy_story_needs_twice_its_usual_reports():
    busy = volume_with({n: 3 for n in range(1, 29)} | {0: 4})  # 3 a day usually
    assert busy.surge(DAY, CONFIG) is None  # a fifth report: 5 < 6
    busy.add(DAY)
    assert busy.surge(DAY, CONFIG) == (6, 3.0)


def test_reports_older_than_the_window_do_not_count():
    volume = volume_with({29: 30, 0: 1})
    assert volume.usual(DAY) == 0.0
    assert volume.surge(DAY, CONFIG) == (2, 0.0)


def test_old_days_are_forgotten_and_a_late_backlog_report_cannot_surge():
    volume = volume_with({100: 5, 0: 1})
    assert min(volume.counts) >= DAY - timedelta(days=CONFIG.days + 1)
    assert volume.surge(DAY - timedelta(days=100), CONFIG) is None


def test_disabled():
    volume = volume_with({0: 5})
    assert volume.surge(DAY, SurgeConfig(enabled=False)) is None


def test_a_late_report_is_judged_against_its_own_full_window():
    """A steady story (3 a day): one more report dated 20 days back is no surge, because
    the days its window needs are still counted."""
    volume = volume_with({n: 3 for n in range(0, 60)})
    assert volume.surge(DAY - timedelta(days=20), CONFIG) is None
