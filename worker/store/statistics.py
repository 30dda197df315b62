"""Planner statistics for the tables every item looks up, kept current by the service.

The near-copy lookup (`worker.store.articles.copy_candidates`) asks `article_bands` for
about forty band keys at once. Until PostgreSQL has analyzed the table it guesses that
such a lookup returns a fifth of the rows and scans them all, comparing every row with
every key: measured in a burst, 45 ms a lookup at 1,000 articles and growing with the
table, against 0.3 ms through the index once analyzed. Autovacuum would analyze the table,
but it wakes once a minute, is often turned off, and a fresh database takes its first
burst of items well before. So the beat's tick asks here whether a hot table changed by
more than autovacuum's own rule allows since it was last analyzed, and analyzes it.

SQLite needs none of this: its planner takes the index for an `IN` list without
statistics.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# The tables looked up once or more per item, by a key the planner must know is selective.
HOT_TABLES = ("article_bands", "articles", "items", "story_facts", "story_reports", "developments")
# autovacuum_analyze_threshold and autovacuum_analyze_scale_factor's defaults: analyze
# once the rows changed since the last analyze exceed 50 plus a tenth of the table.
ANALYZE_THRESHOLD = 50
ANALYZE_SCALE_FACTOR = 0.1
# One tick at a time analyzes; another tick meanwhile skips instead of queueing behind it.
_ADVISORY_KEY = 0x73776174  # "swat"


def stale_tables(session: Session) -> list[str]:
    """The hot tables whose statistics are out of date (PostgreSQL; [] elsewhere)."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    rows = session.execute(
        text(
            "select relname, n_mod_since_analyze, n_live_tup from pg_stat_user_tables "
            "where schemaname = current_schema() and relname = any(:tables)"
        ),
        {"tables": list(HOT_TABLES)},
    ).all()
    return sorted(
        str(name)
        for name, changed, live in rows
        if changed > ANALYZE_THRESHOLD + ANALYZE_SCALE_FACTOR * live
    )


def analyze(session: Session, tables: list[str]) -> bool:
    """ANALYZE the tables, unless another session is analyzing them now (False then).
    Table names come from `stale_tables`, never from input."""
    if not tables:
        return True
    if not session.scalar(text("select pg_try_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY}):
        return False
    for table in tables:
        assert table in HOT_TABLES
        session.execute(text(f"analyze {table}"))
    return True
