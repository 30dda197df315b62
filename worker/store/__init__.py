"""Durable state in SQL (SQLite by default, PostgreSQL in production) via SQLAlchemy 2.

`schema` declares the tables, `engine` opens databases and runs the Alembic migrations
(`worker/migrations`). The queries live here, by use:
- `configured`: feeds and stories from the configuration, written at start;
- `feeds`: claim the due feeds, their validators, a poll's outcome and its new items;
- `queue`: work the broker may have lost, an item's failed run;
- `articles`: copies by URL, fingerprint or shared bands;
- `developments`: their sources and the "also reported by" count;
- `outbox`: an alert and its deliveries; `deliveries`: due, leased, recorded, and a
  destination's circuit;
- `reader`: a read-only snapshot for `storywatch check`;
- `ops`, `alerts`: the operator's status, the outbox, retry.
The use cases that still hold their own queries are listed in tests/test_layout.py
until they move here. Nothing here knows about HTTP or Celery.
"""
