"""Alembic operations every service's migrations share (each service owns an outbox and an inbox)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from servicekit.database import inbox_table, outbox_table


def create_messaging_tables() -> None:
    """Create the outbox and inbox as every service's first migration made them: `servicekit.database`'s
    tables, with the outbox's envelope as `jsonb` and no traceparent column (`outbox_envelope_as_written`, a
    later migration in every service, brings them to what `servicekit.database` defines now)."""
    metadata = sa.MetaData()
    bind = op.get_bind()
    for table in (outbox_table(metadata), inbox_table(metadata)):
        table.create(bind)
    op.execute("ALTER TABLE outbox DROP COLUMN traceparent, ALTER COLUMN envelope TYPE jsonb USING envelope::jsonb")


def drop_messaging_tables() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")


def outbox_envelope_as_written() -> None:
    """The outbox keeps each envelope as the JSON text it was written as (`json`) and its traceparent beside it
    (see `servicekit.database.outbox_table`). Rows already there keep their messages: an envelope becomes the
    text `jsonb` renders, and an unpublished one's traceparent is copied out of it for the relay (published
    rows are only pruned)."""
    op.execute("ALTER TABLE outbox ADD COLUMN traceparent text")
    op.execute("UPDATE outbox SET traceparent = envelope ->> 'traceparent' WHERE published_at IS NULL")
    op.execute("ALTER TABLE outbox ALTER COLUMN envelope TYPE json USING envelope::json")


def outbox_envelope_as_jsonb() -> None:
    """Back to `jsonb`, without the traceparent column (the envelope still holds it). Fails on an envelope
    `jsonb` refuses (one holding `\\u0000`), which `json` accepted: such a row must be published and pruned
    first."""
    op.execute("ALTER TABLE outbox ALTER COLUMN envelope TYPE jsonb USING envelope::jsonb")
    op.execute("ALTER TABLE outbox DROP COLUMN traceparent")
