"""Idempotent consumption: a message id is applied at most once per consumer."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession


class Inbox:
    def __init__(self, table: sa.Table) -> None:
        self.table = table

    async def claim(self, session: AsyncSession, consumer: str, message_id: str) -> bool:
        """True the first time, inside the caller's transaction; False for a duplicate."""
        result = await session.execute(
            insert(self.table)
            .values(consumer=consumer, message_id=message_id)
            .on_conflict_do_nothing()
            .returning(self.table.c.message_id)
        )
        return result.first() is not None
