"""Parts, SKUs, SKU usage by parts and by open orders; outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
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
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "parts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("material_type", sa.Text, nullable=False),
        sa.Column("material_color", sa.String(7), nullable=True),
        sa.Column("grams", sa.Float, nullable=True),
        sa.Column("print_minutes", sa.Float, nullable=True),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("details", JSONB, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_parts_sha256", "parts", ["sha256"])
    op.create_index(
        "ix_parts_name_trgm", "parts", [sa.text("lower(name) gin_trgm_ops")], postgresql_using="gin"
    )
    op.create_table(
        "skus",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("lines", JSONB, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("search", sa.Text, sa.Computed("lower(sku) || chr(31) || lower(name)", persisted=True)),
    )
    op.create_index("ux_skus_sku_lower", "skus", [sa.text("lower(sku)")], unique=True)
    op.create_index("ix_skus_search_trgm", "skus", [sa.text("search gin_trgm_ops")], postgresql_using="gin")
    op.create_table(
        "sku_part_uses",
        sa.Column("sku_id", sa.String(36), sa.ForeignKey("skus.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("part_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_sku_part_uses_part", "sku_part_uses", ["part_id"])
    op.create_table(
        "known_orders",
        sa.Column("order_id", sa.String(36), primary_key=True),
        sa.Column("order_number", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("sku_ids", JSONB, nullable=False),
    )
    op.create_table(
        "order_sku_uses",
        sa.Column("order_id", sa.String(36), primary_key=True),
        sa.Column("sku_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_order_sku_uses_sku", "order_sku_uses", ["sku_id"])
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    for table in ("order_sku_uses", "known_orders", "sku_part_uses", "skus", "parts"):
        op.drop_table(table)
