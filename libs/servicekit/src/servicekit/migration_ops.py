"""Alembic operations shared by every service's first migration."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from servicekit.database import inbox_table, outbox_table


def create_messaging_tables() -> None:
    """Create the outbox and inbox exactly as `servicekit.database` defines them."""
    metadata = sa.MetaData()
    bind = op.get_bind()
    for table in (outbox_table(metadata), inbox_table(metadata)):
        table.create(bind)


def drop_messaging_tables() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")
