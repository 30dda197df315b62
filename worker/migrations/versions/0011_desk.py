"""The story desk: feedback on alerts and reports, story mutes, feeds added from the desk

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 11:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        # "config" (feeds.toml) or "desk" (added on the web desk or by OPML import): only
        # config feeds are disabled when they leave feeds.toml.
        batch.add_column(
            sa.Column("origin", sa.String(16), nullable=False, server_default="config")
        )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("story_id", sa.String(64), nullable=False, index=True),
        sa.Column("article_id", sa.Integer, sa.ForeignKey("articles.id"), nullable=False),
        sa.Column("alert_id", sa.String(40), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("article_id", "story_id", "verdict", name="uq_feedback"),
    )
    op.create_table(
        "story_mutes",
        sa.Column("story_id", sa.String(64), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),  # None: for good
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("story_mutes")
    op.drop_table("feedback")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("origin")
