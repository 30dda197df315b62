"""feeds.moved_to, feeds.stopped, feeds.not_found_streak: a permanent redirect remembered,
a feed that is gone no longer polled

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 07:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("moved_to", sa.Text(), nullable=True))
    op.add_column("feeds", sa.Column("stopped", sa.Text(), nullable=True))
    op.add_column(
        "feeds",
        sa.Column("not_found_streak", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("not_found_streak")
        batch.drop_column("stopped")
        batch.drop_column("moved_to")
