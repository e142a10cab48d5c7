"""Slices (the cache and the claims); outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.migration_ops import create_messaging_tables, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slices",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_filename", sa.Text, nullable=False),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("printer_model", sa.Text, nullable=False),
        sa.Column("fabmatic", sa.Boolean, nullable=False),
        sa.Column("material_type", sa.Text, nullable=False),
        sa.Column("material_color", sa.String(9), nullable=True),
        sa.Column("claim_owner", sa.Text, nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("file_name", sa.Text, nullable=True),
        sa.Column("file_kind", sa.String(16), nullable=True),
        sa.Column("file_size_bytes", sa.BigInteger, nullable=True),
        sa.Column("profile", sa.Text, nullable=True),
        sa.Column("print_minutes", sa.Float, nullable=True),
        sa.Column("grams", sa.Float, nullable=True),
        sa.Column("layers", sa.Integer, nullable=True),
        sa.Column("filament_mm", sa.Float, nullable=True),
        sa.Column("failure_stage", sa.String(16), nullable=True),
        sa.Column("failure_error", sa.Text, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slice_seconds", sa.Float, nullable=True),
    )
    op.create_index("ix_slices_updated", "slices", [sa.text("updated_at DESC"), "key"])
    op.create_index("ix_slices_state_updated", "slices", ["state", sa.text("updated_at DESC"), "key"])
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    op.drop_table("slices")
