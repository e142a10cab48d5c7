"""queued jobs indexed in queue order per requirement group

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

QUEUE_ORDER = """
    lower(btrim(material_type)), coalesce(material_color, ''), coalesce(material_profile, ''), assignment,
    (priority <> 'normal'), coalesce(fulfillment_date, DATE '9999-12-31'), order_created_at,
    order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
"""


def upgrade() -> None:
    # A matching pass reads only the first few queued jobs of each group, in queue order: with this index
    # that is a short index range per group instead of ranking every queued job.
    op.execute(f"CREATE INDEX ix_jobs_queue_order ON jobs ({QUEUE_ORDER}) WHERE status = 'queued'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_jobs_queue_order")
