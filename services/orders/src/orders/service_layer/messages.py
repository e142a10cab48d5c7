"""Contract ↔ domain translation, in one place: the messages the service emits, built from its orders, and
the domain values (and commands) it takes from the messages it consumes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contracts.orders.v1 import (
    DesiredLineItem,
    DesiredPart,
    OrderCancelled,
    OrderChanged,
    OrderCompleted,
    OrderPrintRequested,
)
from contracts.queue.v1 import OrderForecastChanged, OrderJobsSummarized
from contracts.shared_values import Assignment
from contracts.skus.v1 import SkuChanged
from orders.domain import commands
from orders.domain.model import Forecast, JobCounts, MaterialGrams, Order, PartEstimate, Sku
from orders.domain.parameters import SkuParameter, resolve_current

# -- outgoing -------------------------------------------------------------------------------------


def order_changed(order: Order) -> OrderChanged:
    return OrderChanged(
        id=order.id,
        order_number=order.order_number,
        status=order.status,
        is_complete=order.is_complete,
        customer_name=order.customer_name,
        customer_email=order.customer_email,
        sku_ids=order.sku_ids(),
        revision=order.revision,
        updated_at=order.updated_at,
    )


def order_completed(order: Order) -> OrderCompleted | None:
    """None while the order has no completion time (it is not complete)."""
    if order.completed_at is None:
        return None
    return OrderCompleted(id=order.id, order_number=order.order_number, completed_at=order.completed_at)


def order_cancelled(order: Order) -> OrderCancelled:
    return OrderCancelled(order_id=order.id, print_revision=order.print_revision)


def desired_part(part: Mapping[str, Any], line_parameters: Mapping[str, Any]) -> DesiredPart:
    """A SKU part with this line's SKU PARAM values laid over the values the SKU fixes."""
    declared = part.get("sku_params") or []
    values = {
        **(part.get("parameter_values") or {}),
        **{k: line_parameters[k] for k in declared if k in line_parameters},
    }
    return DesiredPart.model_validate(
        {
            "part_id": part["part_id"],
            "part_name": part["part_name"],
            "quantity": part["quantity"],
            "material": part["material"],
            "file": part["file"],
            "parameter_values": values,
            "print_minutes": part.get("print_minutes"),
            "grams": part.get("grams"),
        }
    )


def desired_state(order: Order, skus: Mapping[str, Sku]) -> OrderPrintRequested:
    """The order's whole desired print state, as the queue reconciles against it. Parts are built once per
    (SKU, parameter values): a 2,000-line order of a few SKUs stays cheap."""
    parts_for: dict[tuple[str, str], list[DesiredPart]] = {}
    line_items = []
    for position, li in enumerate(order.line_items):
        sku = skus[li.sku_id]
        parameters = resolve_current(sku.parameters, li.parameters)
        key = (sku.id, json.dumps(parameters, sort_keys=True, default=str))
        if key not in parts_for:
            parts_for[key] = [desired_part(part, parameters) for part in sku.parts]
        line_items.append(
            DesiredLineItem.model_construct(
                line_item_id=li.id,
                position=position,
                sku_id=sku.id,
                sku=sku.sku,
                quantity=li.quantity,
                parameters=parameters,
                parts=parts_for[key],
            )
        )
    return OrderPrintRequested(
        order_id=order.id,
        order_number=order.order_number,
        print_revision=order.print_revision,
        assignment=Assignment.model_validate(order.assignment or {"mode": "next_available"}),
        fulfillment_date=order.fulfillment_date,
        order_created_at=order.created_at,
        line_items=line_items,
    )


# -- incoming -------------------------------------------------------------------------------------


def sku_from_message(message: SkuChanged) -> Sku:
    return Sku(
        id=message.id,
        sku=message.sku,
        name=message.name,
        jobs_per_unit=message.jobs_per_unit,
        parameters=tuple(
            SkuParameter(
                name=p.name,
                type=p.type,
                default=p.default,
                options=tuple(p.options) if p.options is not None else None,
                min=p.min,
                max=p.max,
            )
            for p in message.parameters
        ),
        materials=tuple(MaterialGrams(m.type, m.color, m.grams) for m in message.materials),
        parts=tuple(part.model_dump(mode="json") for part in message.parts),
        revision=message.revision,
        deleted=message.deleted,
    )


def replicate_sku(message: SkuChanged) -> commands.ReplicateSku:
    return commands.ReplicateSku(sku_from_message(message))


def apply_jobs_summary(message: OrderJobsSummarized) -> commands.ApplyJobsSummary:
    return commands.ApplyJobsSummary(
        order_id=message.order_id,
        sequence=message.sequence,
        print_revision=message.print_revision,
        line_items={li_id: JobCounts(**c.model_dump()) for li_id, c in message.line_items.items()},
        totals=JobCounts(**message.totals.model_dump()),
        estimates={
            li_id: tuple(PartEstimate(e.part_id, e.jobs, e.sliced_jobs, e.grams, e.print_minutes) for e in parts)
            for li_id, parts in message.estimates.items()
        },
    )


def record_forecast(message: OrderForecastChanged) -> commands.RecordForecast:
    return commands.RecordForecast(
        message.order_id, Forecast(message.generated_at, message.completes_at, message.late, message.blocked_by)
    )
