"""outbox: each envelope kept as the JSON text it was written as (`json`), its traceparent in a column

The relay sends the stored text as it is; as `jsonb`, PostgreSQL parsed every envelope at insert and rendered
it back at relay time (see `servicekit.database.outbox_table`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from servicekit.migration_ops import outbox_envelope_as_jsonb, outbox_envelope_as_written

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_envelope_as_written()


def downgrade() -> None:
    outbox_envelope_as_jsonb()
