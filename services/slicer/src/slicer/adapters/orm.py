"""The slicer database schema (SQLAlchemy Core); migrations/versions creates exactly these tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.database import inbox_table, outbox_table

metadata = sa.MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

slices = sa.Table(
    "slices",
    metadata,
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
    sa.Index("ix_slices_updated", sa.text("updated_at DESC"), "key"),
    sa.Index("ix_slices_state_updated", "state", sa.text("updated_at DESC"), "key"),
)
