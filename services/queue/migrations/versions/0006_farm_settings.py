"""the farm's matching settings: the colour tolerance (CIEDE2000 ΔE, 0 = exact colour)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "farm_settings",
        sa.Column("id", sa.SmallInteger, primary_key=True, server_default="1"),
        sa.Column("color_tolerance", sa.Float, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_farm_settings_one_row"),
        sa.CheckConstraint("color_tolerance >= 0", name="ck_farm_settings_color_tolerance"),
    )


def downgrade() -> None:
    op.drop_table("farm_settings")
