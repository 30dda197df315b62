"""Alembic environment: runs migrations on the engine storywatch hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from worker.store.schema import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):  # pragma: no cover - only reachable from the alembic CLI
    raise RuntimeError("run migrations through `storywatch migrate`")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
