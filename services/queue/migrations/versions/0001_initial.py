"""Jobs, orders applied, the printer replica; outbox and inbox.

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

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("order_number", sa.String(255), nullable=False, server_default=""),
        sa.Column("applied_revision", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("summary_sequence", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("order_number", sa.String(255), nullable=False),
        sa.Column("line_item_id", sa.String(64), nullable=False),
        sa.Column("line_position", sa.Integer, nullable=False),
        sa.Column("sku_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("part_id", sa.String(64), nullable=False),
        sa.Column("part_index", sa.Integer, nullable=False),
        sa.Column("part_name", sa.String(255), nullable=False),
        sa.Column("copy_number", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("wanted", sa.Boolean, nullable=False),
        sa.Column("printer_id", sa.String(64), nullable=True),
        sa.Column("material_type", sa.String(64), nullable=False),
        sa.Column("material_color", sa.String(16), nullable=True),
        sa.Column("material_profile", sa.String(64), nullable=True),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("file", JSONB, nullable=False),
        sa.Column("assignment", JSONB, nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("fulfillment_date", sa.Date, nullable=True),
        sa.Column("order_created_at", TS, nullable=False),
        sa.Column("grams", sa.Float, nullable=True),
        sa.Column("print_minutes", sa.Float, nullable=True),
        sa.Column("progress_percent", sa.Float, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("dispatch_attempts", sa.Integer, nullable=False),
        sa.Column("command_id", sa.String(64), nullable=True),
        sa.Column("dispatch_deadline", TS, nullable=True),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
    )
    # A cancelled job is history: the identity may get a new live job (re-added copy, operator retry).
    op.create_index(
        "uq_jobs_live_identity",
        "jobs",
        ["order_id", "line_item_id", "part_id", "copy_number"],
        unique=True,
        postgresql_where=sa.text("status <> 'cancelled'"),
    )
    op.create_index(
        "uq_jobs_active_printer",
        "jobs",
        ["printer_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('assigned', 'printing', 'paused')"),
    )
    op.create_index("ix_jobs_order", "jobs", ["order_id"])
    op.create_index("ix_jobs_queued_type", "jobs", ["material_type"], postgresql_where=sa.text("status = 'queued'"))
    op.create_index(
        "ix_jobs_assigned_deadline", "jobs", ["dispatch_deadline"], postgresql_where=sa.text("status = 'assigned'")
    )
    op.create_index("ix_jobs_printer", "jobs", ["printer_id"])
    op.create_index("ix_jobs_created", "jobs", ["created_at", "id"])
    op.create_index("ix_jobs_order_number", "jobs", ["order_number", "id"])
    op.create_table(
        "printers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("model", sa.String(64), nullable=False, server_default=""),
        sa.Column("tags", JSONB, nullable=False),
        sa.Column("fabmatic", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("bed_clear", sa.Boolean, nullable=False),
        sa.Column("materials", JSONB, nullable=False),
        sa.Column("current_job_id", sa.String(64), nullable=True),
        sa.Column("idle_since", TS, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("avoid_until", TS, nullable=True),
        sa.Column("dispatch_misses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=True),
    )
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    op.drop_table("printers")
    op.drop_table("jobs")
    op.drop_table("orders")
