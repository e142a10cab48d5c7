"""Idempotent consumption: a message id is applied at most once per consumer."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession


class Inbox:
    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self._claim = (
            insert(table)
            .values(consumer=sa.bindparam("consumer"), message_id=sa.bindparam("message_id"))
            .on_conflict_do_nothing()
            .returning(table.c.message_id)
        )
        """Built once: every consumed message runs it."""

    async def claim(self, session: AsyncSession, consumer: str, message_id: str) -> bool:
        """True the first time, inside the caller's transaction; False for a duplicate."""
        result = await session.execute(self._claim, {"consumer": consumer, "message_id": message_id})
        return result.first() is not None
