"""deliveries.kind: an alert's delivery, or the one follow-up ("update") it may get

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="alert"))
        batch.drop_constraint("uq_deliveries_alert_destination", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_alert_destination_kind", ["alert_id", "destination_id", "kind"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE kind = 'update'")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_alert_destination_kind", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_alert_destination", ["alert_id", "destination_id"]
        )
        batch.drop_column("kind")
