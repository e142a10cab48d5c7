"""The skus database schema (SQLAlchemy Core); migrations/versions creates exactly these tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.database import inbox_table, outbox_table

SKU_SEARCH_EXPRESSION = "lower(sku) || chr(31) || lower(name)"
"""Code and name, lower-cased, joined by a separator no search contains: one trigram index serves
`?q=` on either, and the filter compares a stored column instead of calling lower() per row."""

metadata = sa.MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

parts = sa.Table(
    "parts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("material_type", sa.Text, nullable=False),
    sa.Column("material_color", sa.String(7), nullable=True),
    sa.Column("grams", sa.Float, nullable=True),
    sa.Column("print_minutes", sa.Float, nullable=True),
    sa.Column("parameters", JSONB, nullable=False),
    sa.Column("details", JSONB, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_parts_name_trgm", sa.text("lower(name) gin_trgm_ops"), postgresql_using="gin"),
)

skus = sa.Table(
    "skus",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("sku", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("lines", JSONB, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("search", sa.Text, sa.Computed(SKU_SEARCH_EXPRESSION, persisted=True)),
    sa.Index("ux_skus_sku_lower", sa.text("lower(sku)"), unique=True),
    sa.Index("ix_skus_search_trgm", sa.text("search gin_trgm_ops"), postgresql_using="gin"),
)

sku_part_uses = sa.Table(
    "sku_part_uses",
    metadata,
    sa.Column("sku_id", sa.String(36), sa.ForeignKey("skus.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("part_id", sa.String(36), primary_key=True),
    sa.Index("ix_sku_part_uses_part", "part_id"),
)
"""Which SKUs use which parts, so deleting a part can name its users without scanning JSON."""

known_orders = sa.Table(
    "known_orders",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("order_number", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("sku_ids", JSONB, nullable=False),
)
"""The orders service's OrderChanged, reduced to what SKU deletion needs (newer revision wins)."""

order_sku_uses = sa.Table(
    "order_sku_uses",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("sku_id", sa.String(36), primary_key=True),
    sa.Index("ix_order_sku_uses_sku", "sku_id"),
)
"""SKUs used by orders that are still open (rows of closed/cancelled orders are removed)."""
