"""Idempotent consumption: a message id is applied at most once per consumer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


class DuplicateDelivery(Exception):
    """A statement that carried a delivery's inbox claim found the message applied already: the bus rolls the
    transaction back and acks the delivery, as for a duplicate it found itself."""


@dataclass
class InboxClaim:
    """A delivery's inbox mark left to its handler's first statement (`Bus.consume(..., claim_in_handler=True)`),
    which carries it (`claiming`) instead of the bus spending a round trip on it before the handler runs."""

    consumer: str
    message_id: str
    claimed: bool = False
    """Set once a statement carried the claim; the bus claims after the handler if none did."""

    async def fetch(self, session: AsyncSession, statement: sa.Select[Any], params: Mapping[str, Any]) -> Sequence[Any]:
        """The rows of the select `statement` was made from (`claiming`), read once the claim is made by the same
        statement; raises `DuplicateDelivery` when the message was applied already (the select then never ran)."""
        claim = {"inbox_consumer": self.consumer, "inbox_message_id": self.message_id}
        rows = (await session.execute(statement, {**params, **claim})).all()
        if not rows[0].inbox_claimed:
            raise DuplicateDelivery(self.message_id)
        self.claimed = True
        return [row for row in rows if row.inbox_found]


def claiming(inbox: sa.Table, select: sa.Select[Any]) -> sa.Select[Any]:
    """`select` behind a delivery's inbox claim, in one statement for `InboxClaim.fetch`: the claim (an insert in a
    CTE) comes first and `select` runs only if it claimed, so a `FOR UPDATE` in it locks after the inbox mark, as
    when the bus claimed beforehand. One row always comes back (`inbox_claimed`), besides `select`'s rows
    (`inbox_found`)."""
    claim = (
        insert(inbox)
        .values(consumer=sa.bindparam("inbox_consumer"), message_id=sa.bindparam("inbox_message_id"))
        .on_conflict_do_nothing()
        .returning(inbox.c.message_id)
        .cte("inbox_claim")
    )
    one = sa.select(sa.literal_column("1").label("one")).subquery("delivery")
    found = select.add_columns(sa.true().label("inbox_found")).where(claim.c.message_id.is_not(None))
    rows = found.lateral("claimed")
    return sa.select(claim.c.message_id.is_not(None).label("inbox_claimed"), rows).select_from(
        one.outerjoin(claim, sa.true()).outerjoin(rows, sa.true())
    )
