"""jobs: the printer, start and finish indexes hold only rows that have the value; the queued-by-type index goes

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Every query using these three columns compares them (`=`, `>=`, `<`, `IS NOT NULL`), which a row without a
# value never satisfies: a queued job (no printer, not started, not finished) needs no entry in them, and an
# order of 20,000 jobs then writes 60,000 index entries fewer.
SPARSE = {"ix_jobs_printer": "printer_id", "ix_jobs_started": "started_at", "ix_jobs_finished": "finished_at"}


def upgrade() -> None:
    for name, column in SPARSE.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON jobs ({column}) WHERE {column} IS NOT NULL")
    # Matching finds queued jobs by `ix_jobs_queue_order` (lower(btrim(material_type)), ...); no query filters
    # on the raw material_type any more, so this index only cost every queued job an entry.
    op.execute("DROP INDEX ix_jobs_queued_type")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_jobs_queued_type ON jobs (material_type) WHERE status = 'queued'")
    for name, column in SPARSE.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON jobs ({column})")
