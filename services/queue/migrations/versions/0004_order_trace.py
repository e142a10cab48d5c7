"""orders remember the trace of their last print-jobs request

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A job is dispatched by a later matching pass; its start_print continues the trace of the click that
    # asked for it, so one order's print-jobs request is one trace down to the printer.
    op.add_column("orders", sa.Column("trace_parent", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "trace_parent")
