"""slices the queue asked for, and each waiting job's slicing inputs

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_QUEUE_ORDER = """
    lower(btrim(material_type)), coalesce(material_color, ''), coalesce(material_profile, ''), assignment,
    (priority <> 'normal'), coalesce(fulfillment_date, DATE '9999-12-31'), order_created_at,
    order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
"""
QUEUE_ORDER = """
    lower(btrim(material_type)), coalesce(material_color, ''), coalesce(material_profile, ''), assignment,
    coalesce(slice_basis, ''), (priority <> 'normal'), coalesce(fulfillment_date, DATE '9999-12-31'),
    order_created_at, order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
"""


def upgrade() -> None:
    op.add_column("jobs", sa.Column("slice_basis", sa.String(64), nullable=True))
    op.add_column("jobs", sa.Column("sliced_file", JSONB, nullable=True))
    op.create_index(
        "ix_jobs_waiting_slice_basis", "jobs", ["slice_basis"],
        postgresql_where=sa.text("status IN ('queued', 'slicing')"),
    )
    # Requirement groups now also split by slicing inputs (a job prints only on the models it is sliced for).
    op.execute("DROP INDEX ix_jobs_queue_order")
    op.execute(f"CREATE INDEX ix_jobs_queue_order ON jobs ({QUEUE_ORDER}) WHERE status = 'queued'")
    op.create_table(
        "slices",
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
    )
    op.create_index("ix_slices_basis", "slices", ["slice_basis", "printer_model", "fabmatic"], unique=True)


def downgrade() -> None:
    op.drop_table("slices")
    op.execute("DROP INDEX ix_jobs_queue_order")
    op.execute(f"CREATE INDEX ix_jobs_queue_order ON jobs ({OLD_QUEUE_ORDER}) WHERE status = 'queued'")
    op.drop_index("ix_jobs_waiting_slice_basis", table_name="jobs")
    op.drop_column("jobs", "sliced_file")
    op.drop_column("jobs", "slice_basis")
