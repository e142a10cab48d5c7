"""printers, outbox, inbox

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.migration_ops import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "printers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("ftp_port", sa.Integer, nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
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
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "uq_printers_serial_live", "printers", ["serial"], unique=True, postgresql_where=sa.text("NOT deleted")
    )
    op.create_index("ix_printers_name", "printers", ["name"])


def downgrade() -> None:
    op.drop_table("printers")
    drop_messaging_tables()
