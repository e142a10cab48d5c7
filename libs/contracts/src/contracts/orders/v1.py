"""orders.v1: order state and the desired print state the queue reconciles against."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from contracts.envelope import ContractMessage
from contracts.shared_values import Assignment, FileRef, Frozen, Material

OrderStatus = Literal["open", "queued", "printing", "completed", "closed", "cancelled"]


class OrderChanged(ContractMessage):
    """Summary of an order after any change (for SKU usage and live views)."""

    SUBJECT: ClassVar[str] = "orders.v1.order.changed"

    id: str
    order_number: str
    status: OrderStatus
    is_complete: bool
    customer_name: str | None = None
    customer_email: str | None = None
    sku_ids: list[str] = []
    revision: int
    updated_at: datetime


class OrderCompleted(ContractMessage):
    """The order's last job completed: every job of its current line items is done."""

    SUBJECT: ClassVar[str] = "orders.v1.order.completed"

    id: str
    order_number: str
    completed_at: datetime


class DesiredPart(Frozen):
    part_id: str
    part_name: str
    quantity: int
    material: Material
    file: FileRef
    parameter_values: dict[str, Any] = {}
    print_minutes: float | None = None
    grams: float | None = None


class DesiredLineItem(Frozen):
    line_item_id: str
    position: int
    sku_id: str
    sku: str
    quantity: int
    parameters: dict[str, Any] = {}
    parts: list[DesiredPart]


class OrderPrintRequested(ContractMessage):
    """The whole desired print state of an order at `print_revision` (state transfer, not a delta).

    Applying it twice, or an older revision after a newer one, must change nothing. Large orders
    travel by claim check (see `Envelope.dataref`).
    """

    SUBJECT: ClassVar[str] = "orders.v1.order.print_requested"

    order_id: str
    order_number: str
    print_revision: int
    assignment: Assignment
    fulfillment_date: date | None = None
    order_created_at: datetime
    line_items: list[DesiredLineItem]


class OrderCancelled(ContractMessage):
    """Cancel the order's queued jobs; printing ones finish."""

    SUBJECT: ClassVar[str] = "orders.v1.order.cancelled"

    order_id: str
    print_revision: int
