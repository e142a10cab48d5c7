"""Repositories: rows ↔ domain objects, loaded and saved set-based (one statement per table, not per row)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters.orm import line_items, order_forecasts, orders, search_key, skus
from orders.domain.model import Forecast, JobCounts, LineItem, MaterialGrams, Order, PartEstimate, Sku
from orders.domain.parameters import SkuParameter

_COUNT_FIELDS = ("queued", "printing", "completed", "failed", "cancelled")


def _counts(row: Any) -> JobCounts:
    return JobCounts(**{f: getattr(row, f"jobs_{f}") for f in _COUNT_FIELDS})


def _count_columns(counts: JobCounts) -> dict[str, int]:
    return {f"jobs_{f}": getattr(counts, f) for f in _COUNT_FIELDS}


def sku_from_row(row: Any) -> Sku:
    return Sku(
        id=row.id,
        sku=row.sku,
        name=row.name,
        jobs_per_unit=row.jobs_per_unit,
        parameters=tuple(
            SkuParameter(
                name=p["name"],
                type=p.get("type", "string"),
                default=p.get("default"),
                options=tuple(p["options"]) if p.get("options") is not None else None,
                min=p.get("min"),
                max=p.get("max"),
            )
            for p in row.parameters
        ),
        materials=tuple(MaterialGrams(m["type"], m.get("color"), float(m.get("grams") or 0.0)) for m in row.materials),
        parts=tuple(row.parts),
        revision=row.revision,
        deleted=row.deleted,
    )


def sku_to_row(sku: Sku) -> dict[str, Any]:
    return {
        "id": sku.id,
        "sku": sku.sku,
        "name": sku.name,
        "jobs_per_unit": sku.jobs_per_unit,
        "parameters": [
            {
                "name": p.name,
                "type": p.type,
                "default": p.default,
                "options": list(p.options) if p.options is not None else None,
                "min": p.min,
                "max": p.max,
            }
            for p in sku.parameters
        ],
        "materials": [{"type": m.type, "color": m.color, "grams": m.grams} for m in sku.materials],
        "parts": [dict(p) for p in sku.parts],
        "revision": sku.revision,
        "deleted": sku.deleted,
    }


class SqlSkuRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_many(self, ids: Iterable[str]) -> dict[str, Sku]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = (await self.session.execute(sa.select(skus).where(skus.c.id.in_(wanted)))).all()
        return {row.id: sku_from_row(row) for row in rows}

    async def upsert(self, sku: Sku, updated_at: Any) -> bool:
        """Store `sku` unless a newer revision is already held; True when stored."""
        values = {**sku_to_row(sku), "updated_at": updated_at}
        stmt = insert(skus).values(**values)
        upsert = stmt.on_conflict_do_update(
            index_elements=[skus.c.id],
            set_={k: stmt.excluded[k] for k in values if k != "id"},
            where=skus.c.revision < stmt.excluded.revision,
        ).returning(skus.c.id)
        return (await self.session.execute(upsert)).first() is not None


def _order_from_rows(row: Any, items: Sequence[Any]) -> Order:
    return Order(
        id=row.id,
        order_number=row.order_number,
        customer_name=row.customer_name,
        customer_email=row.customer_email,
        fulfillment_date=row.fulfillment_date,
        notes=row.notes,
        status=row.status,
        is_complete=row.is_complete,
        cancelled=row.cancelled,
        closed=row.closed,
        print_revision=row.print_revision,
        revision=row.revision,
        summary_sequence=row.summary_sequence,
        queue_print_revision=row.queue_print_revision,
        jobs=_counts(row),
        assignment=row.assignment,
        completed_at=row.completed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        line_items=[
            LineItem(
                id=li.id,
                sku_id=li.sku_id,
                quantity=li.quantity,
                parameters=dict(li.parameters),
                position=li.position,
                jobs=_counts(li),
                estimates=tuple(PartEstimate(**e) for e in li.estimates),
            )
            for li in items
        ],
    )


def _order_row(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "order_number": order.order_number,
        "order_number_key": search_key(order.order_number),
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "customer_key": search_key(order.customer_name, order.customer_email),
        "fulfillment_date": order.fulfillment_date,
        "notes": order.notes,
        "status": order.status,
        "is_complete": order.is_complete,
        "cancelled": order.cancelled,
        "closed": order.closed,
        "print_revision": order.print_revision,
        "revision": order.revision,
        "summary_sequence": order.summary_sequence,
        "queue_print_revision": order.queue_print_revision,
        **_count_columns(order.jobs),
        "assignment": order.assignment,
        "completed_at": order.completed_at,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def _line_item_row(order_id: str, li: LineItem) -> dict[str, Any]:
    return {
        "id": li.id,
        "order_id": order_id,
        "position": li.position,
        "sku_id": li.sku_id,
        "quantity": li.quantity,
        "parameters": li.parameters,
        **_count_columns(li.jobs),
        "estimates": [dataclasses.asdict(e) for e in li.estimates],
    }


async def load_orders(session: AsyncSession, ids: Sequence[str], *, for_update: bool = False) -> list[Order]:
    """Orders by id, in the order asked for, with their line items: two queries whatever the size."""
    if not ids:
        return []
    query = sa.select(orders).where(orders.c.id.in_(list(ids))).order_by(orders.c.id)
    if for_update:
        query = query.with_for_update(of=orders)
    order_rows = {row.id: row for row in (await session.execute(query)).all()}
    item_rows: dict[str, list[Any]] = {order_id: [] for order_id in order_rows}
    if order_rows:
        result = await session.execute(
            sa.select(line_items)
            .where(line_items.c.order_id.in_(list(order_rows)))
            .order_by(line_items.c.order_id, line_items.c.position)
        )
        for li in result.all():
            item_rows[li.order_id].append(li)
    loaded = [_order_from_rows(order_rows[i], item_rows[i]) for i in ids if i in order_rows]
    if loaded:
        f = order_forecasts
        rows = await session.execute(sa.select(f).where(f.c.order_id.in_([o.id for o in loaded])))
        forecasts = {r.order_id: Forecast(r.generated_at, r.completes_at, r.late, r.blocked_by) for r in rows}
        for order in loaded:
            order.forecast = forecasts.get(order.id)
    return loaded


class SqlOrderRepository:
    """Saves only what changed since load: the order row, and inserted/updated/deleted line items."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._seen: dict[str, dict[str, dict[str, Any]]] = {}

    def _remember(self, order: Order) -> None:
        self._seen[order.id] = {li.id: _line_item_row(order.id, li) for li in order.line_items}

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        found = await self.get_many([order_id], for_update=for_update)
        return found[0] if found else None

    async def get_many(self, order_ids: Sequence[str], *, for_update: bool = False) -> list[Order]:
        """`for_update` holds the orders' row locks until the transaction ends (SELECT … FOR UPDATE)."""
        loaded = await load_orders(self.session, order_ids, for_update=for_update)
        for order in loaded:
            self._remember(order)
        return loaded

    async def add(self, order: Order) -> None:
        await self.session.execute(sa.insert(orders), [_order_row(order)])
        if order.line_items:
            await self.session.execute(sa.insert(line_items), [_line_item_row(order.id, li) for li in order.line_items])
        self._remember(order)

    async def save(self, order: Order) -> None:
        row = _order_row(order)
        await self.session.execute(sa.update(orders).where(orders.c.id == order.id).values(row))
        before = self._seen.get(order.id, {})
        now = {li.id: _line_item_row(order.id, li) for li in order.line_items}
        removed = [i for i in before if i not in now]
        added = [r for i, r in now.items() if i not in before]
        changed = [r for i, r in now.items() if i in before and before[i] != r]
        if removed:
            await self.session.execute(sa.delete(line_items).where(line_items.c.id.in_(removed)))
        if added:
            await self.session.execute(sa.insert(line_items), added)
        if changed:
            await self._update_line_items(changed)
        self._seen[order.id] = now

    async def save_forecast(self, order_id: str, forecast: Forecast) -> bool:
        """Upsert unless a forecast generated later is stored already (forecasts arrive in any order)."""
        f = order_forecasts
        values = {
            "order_id": order_id,
            "generated_at": forecast.generated_at,
            "completes_at": forecast.completes_at,
            "late": forecast.late,
            "blocked_by": forecast.blocked_by,
        }
        upsert = (
            insert(f)
            .values(values)
            .on_conflict_do_update(
                index_elements=[f.c.order_id],
                set_={k: v for k, v in values.items() if k != "order_id"},
                where=f.c.generated_at < forecast.generated_at,
            )
            .returning(f.c.order_id)
        )
        return (await self.session.execute(upsert)).first() is not None

    async def _update_line_items(self, rows: list[dict[str, Any]]) -> None:
        """One UPDATE … FROM unnest(…) for any number of rows."""
        columns = ["position", "sku_id", "quantity", "parameters", *(f"jobs_{f}" for f in _COUNT_FIELDS), "estimates"]
        types = ["int", "text", "int", "jsonb", *("int" for _ in _COUNT_FIELDS), "jsonb"]
        params: dict[str, Any] = {"ids": [r["id"] for r in rows]}
        for column, kind in zip(columns, types, strict=True):
            values = [r[column] for r in rows]
            params[column] = [_json(v) for v in values] if kind == "jsonb" else values
        unnest_args = ", ".join(
            f"CAST(:{c} AS {'text' if t == 'jsonb' else t}[])" for c, t in zip(columns, types, strict=True)
        )
        assignments = ", ".join(
            f"{c} = v.{c}::jsonb" if t == "jsonb" else f"{c} = v.{c}" for c, t in zip(columns, types, strict=True)
        )
        await self.session.execute(
            sa.text(
                f"UPDATE line_items SET {assignments} "
                f"FROM unnest(CAST(:ids AS text[]), {unnest_args}) AS v(id, {', '.join(columns)}) "
                "WHERE line_items.id = v.id"
            ),
            params,
        )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
