"""Read-side queries for operators: slices newest first, by state, one page at a time."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from slicer.adapters import orm
from slicer.adapters.repository import slice_from_row
from slicer.domain.model import Slice


async def list_slices(
    session: AsyncSession, state: str | None, limit: int, after: tuple[datetime, str] | None
) -> tuple[list[Slice], tuple[datetime, str] | None]:
    """A page ordered by (updated_at desc, key); returns the position after its last row if more follow."""
    t = orm.slices
    query = sa.select(t).order_by(t.c.updated_at.desc(), t.c.key).limit(limit + 1)
    if state is not None:
        query = query.where(t.c.state == state)
    if after is not None:
        updated, key = after
        query = query.where(sa.or_(t.c.updated_at < updated, sa.and_(t.c.updated_at == updated, t.c.key > key)))
    rows = (await session.execute(query)).mappings().all()
    items = [slice_from_row(row) for row in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return items, (last.updated_at, last.key) if last is not None and last.updated_at is not None else None


async def count_by_state(session: AsyncSession) -> dict[str, int]:
    t = orm.slices
    rows = (await session.execute(sa.select(t.c.state, sa.func.count()).group_by(t.c.state))).all()
    return {state: count for state, count in rows}
