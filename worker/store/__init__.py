"""Durable state in SQL (SQLite by default, PostgreSQL in production) via SQLAlchemy 2.

`schema` declares the tables, `engine` opens databases and runs the Alembic migrations.
Queries live with the use cases in `worker.pipeline`; nothing here knows about HTTP or Celery.
"""
