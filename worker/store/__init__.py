"""Durable state in SQL (SQLite by default, PostgreSQL in production) via SQLAlchemy 2.

`schema` declares the tables, `engine` opens databases and runs the Alembic migrations
(`worker/migrations`), `ops` and `alerts` answer the operator's questions (status, the
outbox, retry). The use cases in `worker.pipeline` still hold their own queries; moving
them here is the next step. Nothing here knows about HTTP or Celery.
"""
