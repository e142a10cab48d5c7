"""The queue's record of each order: the revision it applied, its summary sequence, its trace, and the
advisory lock that serialises an order's writers."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.domain.model import OrderRecord


class SqlOrderRepository:
    """Order records; `lock_order_key` comes before any job row of the order."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_order_key(self, order_id: str) -> None:
        """Serialises writers of one order even before its row exists."""
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"order:{order_id}"))))

    async def get_order(self, order_id: str, *, for_update: bool = False) -> OrderRecord | None:
        t = orm.orders
        query = sa.select(t).where(t.c.order_id == order_id)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).first()
        if row is None:
            return None
        return OrderRecord(
            order_id=row.order_id,
            order_number=row.order_number,
            applied_revision=row.applied_revision,
            cancelled=row.cancelled,
            summary_sequence=row.summary_sequence,
        )

    async def save_order(self, order: OrderRecord) -> None:
        values = {
            "order_id": order.order_id,
            "order_number": order.order_number,
            "applied_revision": order.applied_revision,
            "cancelled": order.cancelled,
            "summary_sequence": order.summary_sequence,
            "updated_at": sa.func.now(),
        }
        stmt = insert(orm.orders).values(**values)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=[orm.orders.c.order_id], set_={
                k: stmt.excluded[k] for k in values if k != "order_id"
            })
        )

    async def remember_trace(self, order_id: str, traceparent: str) -> None:
        t = orm.orders
        await self.session.execute(sa.update(t).where(t.c.order_id == order_id).values(trace_parent=traceparent))
