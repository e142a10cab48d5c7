"""The whole desired print state of an order, as the queue reconciles against it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contracts.orders.v1 import DesiredLineItem, DesiredPart, OrderPrintRequested
from contracts.shared_values import Assignment
from orders.domain.model import Order, Sku
from orders.domain.parameters import resolve_current


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
    """Parts are built once per (SKU, parameter values): a 2,000-line order of a few SKUs stays cheap."""
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
