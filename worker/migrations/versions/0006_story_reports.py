"""story reports and surge developments

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 18:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("article_id"),
    )
    with op.batch_alter_table("story_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_story_reports_story_id"), ["story_id"], unique=False)
    # Articles matched before this revision are the stories' past reports: counted, so a
    # story's usual daily rate survives the upgrade.
    op.execute(
        "INSERT INTO story_reports (story_id, article_id, published) "
        "SELECT story_id, id, published FROM articles "
        "WHERE story_id IN (SELECT id FROM stories) ORDER BY id"
    )
    with op.batch_alter_table("developments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("surge", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("developments", schema=None) as batch_op:
        batch_op.drop_column("surge")
    with op.batch_alter_table("story_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_story_reports_story_id"))
    op.drop_table("story_reports")
