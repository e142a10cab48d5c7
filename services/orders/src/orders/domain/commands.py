"""What clients and the bus ask the orders service to do (imperative names), already shaped and typed: one
frozen dataclass per write use case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from orders.domain.model import Forecast, JobCounts, PartEstimate, Sku


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


@dataclass(frozen=True)
class ReplicateSku:
    """Keep the SKU replica at the newest revision the skus service announced."""

    sku: Sku


@dataclass(frozen=True)
class ApplyJobsSummary:
    """The queue's job counts (and sliced estimates) of one order, numbered by `sequence`."""

    order_id: str
    sequence: int
    print_revision: int
    line_items: dict[str, JobCounts]
    totals: JobCounts
    estimates: dict[str, tuple[PartEstimate, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordForecast:
    order_id: str
    forecast: Forecast
