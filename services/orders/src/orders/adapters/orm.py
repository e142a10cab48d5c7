"""The orders database: the SKU replica, orders, line items, and servicekit's outbox and inbox."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.database import inbox_table, outbox_table

metadata = sa.MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

FAR_FUTURE = "9999-12-31"
"""Orders without a fulfillment date sort after every dated one."""

skus = sa.Table(
    "skus",
    metadata,
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

orders = sa.Table(
    "orders",
    metadata,
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
    sa.Column("jobs_queued", sa.Integer, nullable=False),
    sa.Column("jobs_printing", sa.Integer, nullable=False),
    sa.Column("jobs_completed", sa.Integer, nullable=False),
    sa.Column("jobs_failed", sa.Integer, nullable=False),
    sa.Column("jobs_cancelled", sa.Integer, nullable=False),
    sa.Column("assignment", JSONB, nullable=True),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

order_forecasts = sa.Table(
    "order_forecasts",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completes_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("blocked_by", sa.Text, nullable=True),
)

FULFILLMENT_SORT_KEY = sa.func.coalesce(
    orders.c.fulfillment_date, sa.cast(sa.literal_column(f"'{FAR_FUTURE}'"), sa.Date)
)


def search_key(*texts: str | None) -> str:
    """Lower-cased in Python, not by the database, so case-insensitive search does not depend on the
    server's locale (a C-locale server would not lower-case `Ä`)."""
    return "\n".join((t or "").lower() for t in texts)


sa.Index("ix_orders_created", orders.c.created_at, orders.c.id)
sa.Index("ix_orders_unclosed_created", orders.c.created_at, orders.c.id, postgresql_where=sa.not_(orders.c.closed))
sa.Index("ix_orders_order_number", orders.c.order_number, orders.c.id)
sa.Index("ix_orders_status_created", orders.c.status, orders.c.created_at, orders.c.id)
sa.Index(
    "ix_orders_order_number_prefix", orders.c.order_number_key, postgresql_ops={"order_number_key": "text_pattern_ops"}
)
sa.Index("ix_orders_fulfillment", FULFILLMENT_SORT_KEY.label("fulfillment_key"), orders.c.id)
sa.Index(
    "ix_orders_customer_trgm",
    orders.c.customer_key,
    postgresql_using="gin",
    postgresql_ops={"customer_key": "gin_trgm_ops"},
)

line_items = sa.Table(
    "line_items",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("sku_id", sa.String(64), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("parameters", JSONB, nullable=False),
    sa.Column("jobs_queued", sa.Integer, nullable=False, server_default="0"),
    sa.Column("jobs_printing", sa.Integer, nullable=False, server_default="0"),
    sa.Column("jobs_completed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("jobs_failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("jobs_cancelled", sa.Integer, nullable=False, server_default="0"),
    sa.Column("estimates", JSONB, nullable=False, server_default="[]"),
    sa.Index("ix_line_items_order", "order_id", "position"),
    sa.Index("ix_line_items_sku", "sku_id"),
)
