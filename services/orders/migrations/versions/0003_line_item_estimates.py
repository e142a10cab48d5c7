"""Line items keep the queue's sliced estimates per part, so the order's materials show the slicer's grams.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("line_items", sa.Column("estimates", JSONB, nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("line_items", "estimates")
