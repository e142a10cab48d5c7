"""Domain errors; `entrypoints.problems` maps each to one HTTP problem."""

from __future__ import annotations

from dataclasses import dataclass


class OrderError(Exception):
    """Base of every error a client can act on."""


class OrderNotFound(OrderError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class LineItemNotFound(OrderError):
    def __init__(self, order_id: str, line_item_id: str) -> None:
        super().__init__(f"line item {line_item_id} not found in order {order_id}")


class OrderClosed(OrderError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} is closed: closed orders are read-only")


class OrderIsCancelled(OrderError):
    def __init__(self, order_id: str, action: str) -> None:
        super().__init__(f"order {order_id} is cancelled: cannot {action}")


class NotClosable(OrderError):
    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id} cannot be closed: {reason}")
        self.reason = reason


class StaleRevision(OrderError):
    def __init__(self, order_id: str, expected: str, actual: int) -> None:
        super().__init__(f"order {order_id} is at revision {actual}, not {expected}: reload and retry")
        self.actual = actual


class InvalidField(OrderError):
    """A client value that breaks a rule; `field` uses the request body's path (`line_items[0].quantity`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class ParameterInvalid(OrderError):
    """A SKU PARAM value that the SKU does not accept; callers prefix the field path."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter {name!r}: {message}")
        self.name, self.message = name, message


@dataclass(frozen=True)
class UnprintableLineItem:
    line_item_id: str
    position: int
    reason: str


class NotPrintable(OrderError):
    """Some line items cannot be printed (SKU deleted or without parts): nothing is sent."""

    def __init__(self, order_id: str, line_items: list[UnprintableLineItem]) -> None:
        super().__init__(
            f"order {order_id} cannot be sent to the queue: "
            + "; ".join(f"line item {li.line_item_id}: {li.reason}" for li in line_items)
        )
        self.line_items = line_items


class SkuCatalogueUnavailable(OrderError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the SKU catalogue did not answer: {reason}")
