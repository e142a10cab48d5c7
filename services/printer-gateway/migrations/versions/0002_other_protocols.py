"""printers of other protocols: serial optional, materials the operator declares; Bambu camera port

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("printers", "serial", existing_type=sa.String(64), nullable=True)
    op.add_column("printers", sa.Column("operator_materials", JSONB, nullable=False, server_default="[]"))
    op.add_column("printers", sa.Column("camera_port", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("printers", "camera_port")
    op.drop_column("printers", "operator_materials")
    op.execute("UPDATE printers SET serial = id WHERE serial IS NULL")
    op.alter_column("printers", "serial", existing_type=sa.String(64), nullable=False)
