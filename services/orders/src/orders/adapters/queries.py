"""Read-side SQL: order search with keyset pagination, and the customer list. Each page is one indexed
query; the page's orders are then loaded with `load_orders` (two more queries, whatever the page holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters.orm import FULFILLMENT_SORT_KEY, orders, search_key

SORTS: dict[str, tuple[Any, bool]] = {
    "created_at": (orders.c.created_at, False),
    "-created_at": (orders.c.created_at, True),
    "fulfillment_date": (FULFILLMENT_SORT_KEY, False),
    "-fulfillment_date": (FULFILLMENT_SORT_KEY, True),
    "order_number": (orders.c.order_number, False),
    "-order_number": (orders.c.order_number, True),
}
"""Sort name → (key expression, descending). Ties are broken by id in the same direction."""

STATUSES = ("open", "queued", "printing", "completed", "closed", "cancelled")


class BadCursor(ValueError):
    """The cursor was not made by this query's sort."""


@dataclass(frozen=True)
class OrderSearch:
    q: str | None = None
    statuses: tuple[str, ...] = ()
    customer: str | None = None
    fulfillment_from: date | None = None
    fulfillment_to: date | None = None
    include_closed: bool = False
    sort: str = "-created_at"
    limit: int = 50
    after: dict[str, Any] | None = None


def like_literal(text: str) -> str:
    """Escape LIKE's wildcards so `%`, `_` and `\\` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _key_value(sort: str, raw: Any) -> Any:
    if sort.endswith("created_at"):
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has its offset")
        return moment
    if sort.endswith("fulfillment_date"):
        return date.fromisoformat(raw)
    return str(raw)


def _cursor_value(sort: str, row: Any) -> Any:
    if sort.endswith("created_at"):
        return row.created_at.isoformat()
    if sort.endswith("fulfillment_date"):
        return row.sort_key.isoformat()
    return row.order_number


async def _custom_plans(session: AsyncSession) -> None:
    """asyncpg prepares statements; a generic plan could not use the prefix index for `LIKE $1`."""
    await session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def search_order_ids(session: AsyncSession, search: OrderSearch) -> tuple[list[str], dict[str, Any] | None]:
    """Ids of one page of matching orders, and the position after it (None on the last page)."""
    key, descending = SORTS[search.sort]
    query = sa.select(orders.c.id, orders.c.created_at, orders.c.order_number, key.label("sort_key"))
    if search.q:
        query = query.where(orders.c.order_number_key.like(like_literal(search_key(search.q)) + "%", escape="\\"))
    if search.customer:
        pattern = "%" + like_literal(search_key(search.customer)) + "%"
        query = query.where(orders.c.customer_key.like(pattern, escape="\\"))
    if search.statuses:
        query = query.where(orders.c.status.in_(search.statuses))
    if not search.include_closed and "closed" not in search.statuses:
        query = query.where(sa.not_(orders.c.closed))
    if search.fulfillment_from is not None:
        query = query.where(orders.c.fulfillment_date >= search.fulfillment_from)
    if search.fulfillment_to is not None:
        query = query.where(orders.c.fulfillment_date <= search.fulfillment_to)
    if search.after is not None:
        if search.after.get("s") != search.sort or "k" not in search.after or "id" not in search.after:
            raise BadCursor(search.sort)
        try:
            value = _key_value(search.sort, search.after["k"])
        except (TypeError, ValueError) as exc:
            raise BadCursor(search.sort) from exc
        position = sa.tuple_(key, orders.c.id)
        boundary = sa.tuple_(sa.literal(value), sa.literal(str(search.after["id"])))
        query = query.where(position < boundary if descending else position > boundary)
    if descending:
        query = query.order_by(key.desc(), orders.c.id.desc())
    else:
        query = query.order_by(key.asc(), orders.c.id.asc())
    await _custom_plans(session)
    rows = (await session.execute(query.limit(search.limit + 1))).all()
    page = rows[: search.limit]
    after = None
    if len(rows) > search.limit and page:
        last = page[-1]
        after = {"s": search.sort, "k": _cursor_value(search.sort, last), "id": last.id}
    return [row.id for row in page], after


_CUSTOMERS = """
SELECT key,
       (array_agg(customer_name ORDER BY created_at DESC) FILTER (WHERE customer_name IS NOT NULL))[1] AS name,
       (array_agg(customer_email ORDER BY created_at DESC) FILTER (WHERE customer_email IS NOT NULL))[1] AS email,
       count(*) AS orders,
       count(*) FILTER (WHERE NOT closed AND NOT cancelled) AS open_orders,
       max(created_at) AS last_order_at
FROM (
    SELECT coalesce(lower(customer_email), 'name:' || lower(customer_name)) AS key,
           customer_name, customer_email, closed, cancelled, created_at
    FROM orders
    WHERE (customer_email IS NOT NULL OR customer_name IS NOT NULL)
      AND (CAST(:pattern AS text) IS NULL OR customer_key LIKE CAST(:pattern AS text) ESCAPE '\\')
) AS o
WHERE CAST(:after AS text) IS NULL OR key > CAST(:after AS text)
GROUP BY key
ORDER BY key
LIMIT :limit
"""


async def search_customers(
    session: AsyncSession, q: str | None, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Everyone who has ordered, one entry per email (or per name when no email was given)."""
    pattern = "%" + like_literal(search_key(q)) + "%" if q else None
    rows = (await session.execute(sa.text(_CUSTOMERS), {"pattern": pattern, "after": after, "limit": limit + 1})).all()
    items = [
        {
            "name": row.name,
            "email": row.email,
            "orders": row.orders,
            "open_orders": row.open_orders,
            "last_order_at": row.last_order_at.isoformat(),
        }
        for row in rows[:limit]
    ]
    return items, (rows[limit - 1].key if len(rows) > limit else None)
