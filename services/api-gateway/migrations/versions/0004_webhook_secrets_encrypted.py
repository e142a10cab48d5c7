"""Webhook signing secrets are stored encrypted: `secret_token` (Fernet, WEBHOOK_SECRET_KEY) replaces the
plain `secret`.

A migration has no key, so it only makes room: the gateway encrypts every plain secret into
`secret_token` and clears `secret` when it starts (before it sends anything), and re-encrypts tokens
under the newest key the same way.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("secret_token", sa.Text, nullable=True))
    op.alter_column("webhooks", "secret", existing_type=sa.Text, nullable=True)
    op.create_check_constraint("ck_webhooks_secret", "webhooks", "secret IS NOT NULL OR secret_token IS NOT NULL")


def downgrade() -> None:
    # Without the key a migration cannot decrypt: going back needs no encrypted-only webhook left.
    sealed = op.get_bind().execute(sa.text("SELECT count(*) FROM webhooks WHERE secret IS NULL")).scalar_one()
    if sealed:
        raise RuntimeError(f"{sealed} webhooks hold only an encrypted secret: delete them (or set their secrets "
                           "again on the older version) before downgrading")
    op.drop_constraint("ck_webhooks_secret", "webhooks")
    op.alter_column("webhooks", "secret", existing_type=sa.Text, nullable=False)
    op.drop_column("webhooks", "secret_token")
