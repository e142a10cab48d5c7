"""What clients ask the orders service to do (imperative names), already shaped and typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class NewLineItem:
    sku_id: str
    quantity: int
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateOrder:
    order_number: str
    customer_name: str | None = None
    customer_email: str | None = None
    fulfillment_date: date | None = None
    notes: str | None = None
    line_items: tuple[NewLineItem, ...] = ()


@dataclass(frozen=True)
class UpdateOrder:
    order_id: str
    changes: dict[str, Any]
    if_match: str | None = None


@dataclass(frozen=True)
class AddLineItem:
    order_id: str
    item: NewLineItem
    if_match: str | None = None


@dataclass(frozen=True)
class ChangeLineItem:
    order_id: str
    line_item_id: str
    sku_id: str | None = None
    quantity: int | None = None
    parameters: dict[str, Any] | None = None
    if_match: str | None = None


@dataclass(frozen=True)
class RemoveLineItem:
    order_id: str
    line_item_id: str
    if_match: str | None = None


@dataclass(frozen=True)
class RequestPrint:
    order_id: str
    assignment: dict[str, Any] | None = None
    if_match: str | None = None


@dataclass(frozen=True)
class CancelOrder:
    order_id: str
    if_match: str | None = None


@dataclass(frozen=True)
class CloseOrder:
    order_id: str
    if_match: str | None = None


@dataclass(frozen=True)
class CloseOrders:
    order_ids: tuple[str, ...]
