"""The answers' JSON of API.md, and the reads. The Order JSON is built from the aggregate and the SKU replica
(job counter, SKU breakdown and material totals are computed on every read, so they follow line item changes
at once); the write handlers' domain results are shaped here too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orders.adapters.queries import OrderSearch, search_customers, search_order_ids
from orders.adapters.repository import load_orders
from orders.domain.errors import OrderNotFound
from orders.domain.model import Forecast, JobCounts, Order, Sku, job_count, material_totals, sku_breakdown
from orders.domain.results import OrdersClosed, OrderWithSkus, PrintRequested
from orders.service_layer.unit_of_work import OrdersUnitOfWork, UnitOfWork
from servicekit.pagination import cursor_values, encode_cursor


def counts_view(counts: JobCounts) -> dict[str, int]:
    return {
        "queued": counts.queued,
        "printing": counts.printing,
        "completed": counts.completed,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
    }


def forecast_view(forecast: Forecast | None) -> dict[str, Any] | None:
    if forecast is None:
        return None
    view: dict[str, Any] = {
        "completes_at": forecast.completes_at.isoformat() if forecast.completes_at else None,
        "late": forecast.late,
        "blocked_by": forecast.blocked_by,
        "generated_at": forecast.generated_at.isoformat(),
    }
    return view


def order_view(order: Order, skus: Mapping[str, Sku]) -> dict[str, Any]:
    items = []
    for li in order.line_items:
        sku = skus.get(li.sku_id)
        items.append(
            {
                "id": li.id,
                "sku_id": li.sku_id,
                "sku": sku.sku if sku else None,
                "sku_name": sku.name if sku else None,
                "quantity": li.quantity,
                "parameters": li.parameters,
                "job_count": job_count(li.quantity, sku),
                "jobs": counts_view(li.jobs),
            }
        )
    return {
        "id": order.id,
        "order_number": order.order_number,
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "fulfillment_date": order.fulfillment_date.isoformat() if order.fulfillment_date else None,
        "notes": order.notes,
        "status": order.status,
        "is_complete": order.is_complete,
        "line_items": items,
        "job_count": order.job_count(skus),
        "sku_breakdown": [
            {
                "sku_id": s.sku_id,
                "sku": s.sku,
                "quantity": s.quantity,
                "jobs_per_unit": s.jobs_per_unit,
                "job_count": s.job_count,
            }
            for s in sku_breakdown(order.line_items, skus)
        ],
        "materials": [
            {"type": m.type, "color": m.color, "grams": m.grams} for m in material_totals(order.line_items, skus)
        ],
        "jobs": {"total": order.jobs.total, **counts_view(order.jobs)},
        "print_revision": order.print_revision,
        "queue_print_revision": order.queue_print_revision,
        "assignment": order.assignment,
        "revision": order.revision,
        "completed_at": order.completed_at.isoformat() if order.completed_at else None,
        "forecast": forecast_view(order.current_forecast()),
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }


def order_with_skus_view(result: OrderWithSkus) -> dict[str, Any]:
    return order_view(result.order, result.skus)


def print_requested_view(result: PrintRequested) -> dict[str, Any]:
    return {"order_id": result.order_id, "print_revision": result.print_revision}


def orders_closed_view(result: OrdersClosed) -> dict[str, Any]:
    return {
        "closed": list(result.closed),
        "rejected": [{"id": r.order_id, "reason": r.reason} for r in result.refused],
    }


async def order(order_id: str, uow: OrdersUnitOfWork) -> dict[str, Any]:
    async with uow:
        found = await uow.orders.get(order_id)
        if found is None:
            raise OrderNotFound(order_id)
        return order_view(found, await uow.skus.get_many(found.sku_ids()))


async def orders(search: OrderSearch, uow: UnitOfWork) -> dict[str, Any]:
    async with uow:
        ids, after = await search_order_ids(uow.session, search)
        page = await load_orders(uow.session, ids)
        skus = await uow.skus.get_many({li.sku_id for o in page for li in o.line_items})
        return {"items": [order_view(o, skus) for o in page], "next_cursor": encode_cursor(after) if after else None}


async def customers(q: str | None, limit: int, cursor: str | None, uow: UnitOfWork) -> dict[str, Any]:
    position = cursor_values(cursor, "key")
    after = position[0] if position else None
    async with uow:
        items, last = await search_customers(uow.session, q, limit, after)
    return {"items": items, "next_cursor": encode_cursor({"key": last}) if last else None}
