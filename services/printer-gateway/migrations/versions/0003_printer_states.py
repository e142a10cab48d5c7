"""printer state history for utilisation analytics, starting from each printer's state now

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "printer_states",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("printer_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_printer_states_printer_at", "printer_states", ["printer_id", "at"])
    op.create_index("ix_printer_states_at", "printer_states", ["at"])
    # History starts now, in the state each printer is in (as domain.utilisation.utilisation_state maps it).
    op.execute(
        """
        INSERT INTO printer_states (printer_id, state, at)
        SELECT id,
               CASE WHEN NOT coalesce((status ->> 'online')::boolean, false)
                         OR status ->> 'state' = 'offline' THEN 'offline'
                    WHEN status ->> 'state' IN ('printing', 'paused', 'error') THEN status ->> 'state'
                    ELSE 'idle' END,
               now()
        FROM printers WHERE NOT deleted
        """
    )


def downgrade() -> None:
    op.drop_table("printer_states")
