"""SKU replica, orders, line items, outbox and inbox.

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

_COUNTS = ("queued", "printing", "completed", "failed", "cancelled")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "skus",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("jobs_per_unit", sa.Integer, nullable=False),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("materials", JSONB, nullable=False),
        sa.Column("parts", JSONB, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("order_number", sa.Text, nullable=False),
        sa.Column("order_number_key", sa.Text, nullable=False),
        sa.Column("customer_name", sa.Text, nullable=True),
        sa.Column("customer_email", sa.Text, nullable=True),
        sa.Column("customer_key", sa.Text, nullable=False),
        sa.Column("fulfillment_date", sa.Date, nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("is_complete", sa.Boolean, nullable=False),
        sa.Column("cancelled", sa.Boolean, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("print_revision", sa.Integer, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("summary_sequence", sa.BigInteger, nullable=False),
        sa.Column("queue_print_revision", sa.Integer, nullable=False, server_default="0"),
        *(sa.Column(f"jobs_{c}", sa.Integer, nullable=False) for c in _COUNTS),
        sa.Column("assignment", JSONB, nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute("CREATE INDEX ix_orders_created ON orders (created_at, id)")
    op.execute("CREATE INDEX ix_orders_unclosed_created ON orders (created_at, id) WHERE NOT closed")
    op.execute("CREATE INDEX ix_orders_order_number ON orders (order_number, id)")
    op.execute("CREATE INDEX ix_orders_status_created ON orders (status, created_at, id)")
    op.execute("CREATE INDEX ix_orders_order_number_prefix ON orders (order_number_key text_pattern_ops)")
    op.execute(
        "CREATE INDEX ix_orders_fulfillment ON orders ((coalesce(fulfillment_date, CAST('9999-12-31' AS DATE))), id)"
    )
    op.execute("CREATE INDEX ix_orders_customer_trgm ON orders USING gin (customer_key gin_trgm_ops)")
    op.create_table(
        "line_items",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("sku_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("parameters", JSONB, nullable=False),
        *(sa.Column(f"jobs_{c}", sa.Integer, nullable=False, server_default="0") for c in _COUNTS),
    )
    op.create_index("ix_line_items_order", "line_items", ["order_id", "position"])
    op.create_index("ix_line_items_sku", "line_items", ["sku_id"])
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    op.drop_table("line_items")
    op.drop_table("orders")
    op.drop_table("skus")
