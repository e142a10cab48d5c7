"""jobs by start and finish time, for farm analytics over a window

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_finished", "jobs", ["finished_at"])
    op.create_index("ix_jobs_started", "jobs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_started", table_name="jobs")
    op.drop_index("ix_jobs_finished", table_name="jobs")
