"""development specifics

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 17:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Developments recorded before this revision have no specifics: later reports of them
    # can still be recognised as copies, not as rewrites.
    with op.batch_alter_table("developments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("specifics", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("developments", schema=None) as batch_op:
        batch_op.drop_column("specifics")
