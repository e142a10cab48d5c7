"""The gateway's own tables (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.database import inbox_table, outbox_table

metadata = sa.MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

SERIAL_INDEX = "uq_printers_serial_live"
"""One live printer per serial: a second registration of a serial is a conflict."""

printers = sa.Table(
    "printers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("protocol", sa.String(32), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("ftp_port", sa.Integer, nullable=False),
    sa.Column("camera_port", sa.Integer, nullable=True),
    sa.Column("serial", sa.String(64), nullable=True),
    sa.Column("access_code_encrypted", sa.LargeBinary, nullable=False),
    sa.Column("ca_cert", sa.Text, nullable=True),
    sa.Column("tags", JSONB, nullable=False, server_default="[]"),
    sa.Column("fabmatic", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("tracker", JSONB, nullable=False),
    sa.Column("status", JSONB, nullable=False),
    sa.Column("current_command_id", sa.String(64), nullable=True),
    sa.Column("job_sequence", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("idle_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("connection_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("lease_epoch", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("operator_materials", JSONB, nullable=False, server_default="[]"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index(SERIAL_INDEX, "serial", unique=True, postgresql_where=sa.text("NOT deleted")),
    sa.Index("ix_printers_name", "name"),
)

printer_states = sa.Table(
    "printer_states",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("printer_id", sa.String(36), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_printer_states_printer_at", "printer_id", "at"),
    sa.Index("ix_printer_states_at", "at"),
)
"""Each printer's utilisation state from `at` until its next row: the history farm analytics reads."""
