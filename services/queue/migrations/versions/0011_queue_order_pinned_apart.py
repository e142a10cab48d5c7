"""queue order: jobs pinned to a printer get an index of their own, led by that printer's id

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

QUEUE_ORDER = """
    lower(btrim(material_type)), coalesce(material_color, ''), coalesce(material_profile, ''), assignment,
    coalesce(slice_basis, ''), coalesce(CASE WHEN slice_basis IS NULL THEN file ->> 'kind' END, ''),
    (priority <> 'normal'), coalesce(fulfillment_date, DATE 'infinity'), order_created_at,
    order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
"""
SHARED = "(assignment ->> 'mode') IS DISTINCT FROM 'printer'"
PINNED = "(assignment ->> 'mode') = 'printer'"


def upgrade() -> None:
    # A printer turning ready looks for the requirement groups of the queued jobs it could take. In one index
    # the groups of jobs pinned to every other printer sat among them, one probe each (a farm pinning a tenth
    # of 200,000 jobs over 10,000 printers: ~20,000 probes, over half a second); apart, and led by the printer
    # a job is pinned to, a printer probes only its own. Every queued job is in exactly one of the two.
    op.execute(f"CREATE INDEX ix_jobs_queue_shared ON jobs ({QUEUE_ORDER}) WHERE status = 'queued' AND {SHARED}")
    op.execute(
        "CREATE INDEX ix_jobs_queue_pinned ON jobs ((assignment ->> 'printer_id'), "
        f"{QUEUE_ORDER}) WHERE status = 'queued' AND {PINNED}"
    )
    op.execute("DROP INDEX ix_jobs_queue_order")


def downgrade() -> None:
    op.execute(f"CREATE INDEX ix_jobs_queue_order ON jobs ({QUEUE_ORDER}) WHERE status = 'queued'")
    op.execute("DROP INDEX ix_jobs_queue_pinned")
    op.execute("DROP INDEX ix_jobs_queue_shared")
