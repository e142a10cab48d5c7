"""queue order: a job without a fulfillment date sorts with one dated `date.max` (stored as 'infinity')

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_QUEUE_ORDER = """
    lower(btrim(material_type)), coalesce(material_color, ''), coalesce(material_profile, ''), assignment,
    coalesce(slice_basis, ''), coalesce(CASE WHEN slice_basis IS NULL THEN file ->> 'kind' END, ''),
    (priority <> 'normal'), coalesce(fulfillment_date, DATE '9999-12-31'), order_created_at,
    order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
"""
QUEUE_ORDER = """
    lower(btrim(material_type)), coalesce(material_color, ''), coalesce(material_profile, ''), assignment,
    coalesce(slice_basis, ''), coalesce(CASE WHEN slice_basis IS NULL THEN file ->> 'kind' END, ''),
    (priority <> 'normal'), coalesce(fulfillment_date, DATE 'infinity'), order_created_at,
    order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
"""


def upgrade() -> None:
    # `matching.job_order` puts an undated job at `date.max`, which the driver stores as 'infinity': the
    # SQL's stand-in for "no date" must be that value too, or a job dated `date.max` sorts after undated ones.
    op.execute("DROP INDEX ix_jobs_queue_order")
    op.execute(f"CREATE INDEX ix_jobs_queue_order ON jobs ({QUEUE_ORDER}) WHERE status = 'queued'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_jobs_queue_order")
    op.execute(f"CREATE INDEX ix_jobs_queue_order ON jobs ({OLD_QUEUE_ORDER}) WHERE status = 'queued'")
