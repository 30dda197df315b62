"""items by article: a copy's decision waits until its original's item is decided

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 13:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_article_id", "items", ["article_id"])


def downgrade() -> None:
    op.drop_index("ix_items_article_id", table_name="items")
