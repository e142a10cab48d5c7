"""Roles for accounts and tokens, disabled accounts, password changes, token expiry.

Accounts and tokens that exist already were all-powerful: they become admins, and the tokens get
the default lifetime from now on instead of none.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("role", sa.String(16), nullable=False, server_default="admin"))
    op.alter_column("accounts", "role", server_default=None)
    op.add_column("accounts", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("accounts", sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_tokens", sa.Column("role", sa.String(16), nullable=False, server_default="admin"))
    op.alter_column("api_tokens", "role", server_default=None)
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE api_tokens SET expires_at = now() + interval '90 days'")
    op.create_index("ix_api_tokens_account_id", "api_tokens", ["account_id"])
    op.create_index("ix_sessions_account_id", "sessions", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_sessions_account_id", "sessions")
    op.drop_index("ix_api_tokens_account_id", "api_tokens")
    op.drop_column("api_tokens", "expires_at")
    op.drop_column("api_tokens", "role")
    op.drop_column("accounts", "password_changed_at")
    op.drop_column("accounts", "disabled_at")
    op.drop_column("accounts", "role")
