"""The queue's tables (SQLAlchemy Core). The two partial unique indexes are the last line of defence:
never two live jobs for one identity, never two active jobs on one printer."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.database import inbox_table, outbox_table

metadata = sa.MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("order_number", sa.String(255), nullable=False, server_default=""),
    sa.Column("applied_revision", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("summary_sequence", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("trace_parent", sa.String(64), nullable=True),
)

jobs = sa.Table(
    "jobs",
    metadata,
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
    sa.Column("order_created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("grams", sa.Float, nullable=True),
    sa.Column("print_minutes", sa.Float, nullable=True),
    sa.Column("progress_percent", sa.Float, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("dispatch_attempts", sa.Integer, nullable=False),
    sa.Column("command_id", sa.String(64), nullable=True),
    sa.Column("dispatch_deadline", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("slice_basis", sa.String(64), nullable=True),
    sa.Column("sliced_file", JSONB, nullable=True),
    sa.Index(
        "uq_jobs_live_identity",
        "order_id",
        "line_item_id",
        "part_id",
        "copy_number",
        unique=True,
        postgresql_where=sa.text("status <> 'cancelled'"),
    ),
    sa.Index(
        "uq_jobs_active_printer",
        "printer_id",
        unique=True,
        postgresql_where=sa.text("status IN ('assigned', 'printing', 'paused')"),
    ),
    sa.Index("ix_jobs_order", "order_id"),
    sa.Index("ix_jobs_assigned_deadline", "dispatch_deadline", postgresql_where=sa.text("status = 'assigned'")),
    sa.Index("ix_jobs_printer", "printer_id", postgresql_where=sa.text("printer_id IS NOT NULL")),
    sa.Index("ix_jobs_created", "created_at", "id"),
    sa.Index("ix_jobs_order_number", "order_number", "id"),
    sa.Index("ix_jobs_finished", "finished_at", postgresql_where=sa.text("finished_at IS NOT NULL")),
    sa.Index("ix_jobs_started", "started_at", postgresql_where=sa.text("started_at IS NOT NULL")),
    sa.Index(
        "ix_jobs_waiting_slice_basis", "slice_basis", postgresql_where=sa.text("status IN ('queued', 'slicing')")
    ),
)

slices = sa.Table(
    "slices",
    metadata,
    sa.Column("slice_key", sa.String(64), primary_key=True),
    sa.Column("slice_basis", sa.String(64), nullable=False),
    sa.Column("printer_model", sa.String(64), nullable=False),
    sa.Column("fabmatic", sa.Boolean, nullable=False),
    sa.Column("source", JSONB, nullable=False),
    sa.Column("parameters", JSONB, nullable=False),
    sa.Column("material_type", sa.String(64), nullable=False),
    sa.Column("material_profile", sa.String(64), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("file", JSONB, nullable=True),
    sa.Column("profile", sa.String(255), nullable=True),
    sa.Column("print_minutes", sa.Float, nullable=True),
    sa.Column("grams", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("stage", sa.String(16), nullable=True),
    sa.Column("requests", sa.Integer, nullable=False, server_default="1"),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_slices_basis", "slice_basis", "printer_model", "fabmatic", unique=True),
)
"""One row per requested slice (`slice_key` = sha256 of its inputs): what the slicer answered."""

farm_settings = sa.Table(
    "farm_settings",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, server_default="1"),
    sa.Column("color_tolerance", sa.Float, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("id = 1", name="ck_farm_settings_one_row"),
    sa.CheckConstraint("color_tolerance >= 0", name="ck_farm_settings_color_tolerance"),
)
"""The operator's settings for the farm's matching: one row (absent until first set: the defaults)."""

printers = sa.Table(
    "printers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("model", sa.String(64), nullable=False, server_default=""),
    sa.Column("protocol", sa.String(32), nullable=False, server_default="bambu_lan"),
    sa.Column("tags", JSONB, nullable=False),
    sa.Column("fabmatic", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("online", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("bed_clear", sa.Boolean, nullable=False),
    sa.Column("materials", JSONB, nullable=False),
    sa.Column("current_job_id", sa.String(64), nullable=True),
    sa.Column("idle_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("avoid_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("dispatch_misses", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
)
