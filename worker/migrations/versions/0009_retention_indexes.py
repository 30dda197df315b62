"""indexes for retention: articles and deliveries by age

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 07:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_articles_created_at", "articles", ["created_at"])
    op.create_index("ix_deliveries_delivered_at", "deliveries", ["delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_delivered_at", table_name="deliveries")
    op.drop_index("ix_articles_created_at", table_name="articles")
