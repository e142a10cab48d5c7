"""The queue's forecast of each order, beside the order (not in its row: a forecast is not an edit).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_forecasts",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completes_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("blocked_by", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("order_forecasts")
