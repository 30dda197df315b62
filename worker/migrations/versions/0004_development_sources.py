"""development sources

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:12:38.184423
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "development_sources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("development_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
        ),
        sa.ForeignKeyConstraint(["development_id"], ["developments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("development_id", "article_id", name="uq_development_sources"),
    )
    with op.batch_alter_table("development_sources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_development_sources_development_id"), ["development_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("development_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_development_sources_development_id"))

    op.drop_table("development_sources")
