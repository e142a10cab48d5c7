"""each printer's protocol, and queue heads grouped by the family of a job's pre-sliced file

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_QUEUE_ORDER = """
    lower(btrim(material_type)), coalesce(material_color, ''), coalesce(material_profile, ''), assignment,
    coalesce(slice_basis, ''), (priority <> 'normal'), coalesce(fulfillment_date, DATE '9999-12-31'),
    order_created_at, order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
"""
QUEUE_ORDER = """
    lower(btrim(material_type)), coalesce(material_color, ''), coalesce(material_profile, ''), assignment,
    coalesce(slice_basis, ''), coalesce(CASE WHEN slice_basis IS NULL THEN file ->> 'kind' END, ''),
    (priority <> 'normal'), coalesce(fulfillment_date, DATE '9999-12-31'), order_created_at,
    order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
"""


def upgrade() -> None:
    # Printers known before the gateway reported a protocol are Bambu ones (what it drove then).
    op.add_column(
        "printers", sa.Column("protocol", sa.String(32), nullable=False, server_default="bambu_lan")
    )
    # A pre-sliced `.gcode.3mf` prints only on Bambu printers, a `.gcode` only on the others: requirement
    # groups split by the kind of the file a job prints as it is.
    op.execute("DROP INDEX ix_jobs_queue_order")
    op.execute(f"CREATE INDEX ix_jobs_queue_order ON jobs ({QUEUE_ORDER}) WHERE status = 'queued'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_jobs_queue_order")
    op.execute(f"CREATE INDEX ix_jobs_queue_order ON jobs ({OLD_QUEUE_ORDER}) WHERE status = 'queued'")
    op.drop_column("printers", "protocol")
