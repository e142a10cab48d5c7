"""Domain errors, each declaring the HTTP problem it becomes (servicekit's installer answers them all)."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.domain_errors import DomainError, field_errors


class OrderError(DomainError):
    """Base of every error a client can act on."""

    status, title = 422, "Unprocessable content"


class OrderNotFound(OrderError):
    status, title = 404, "Not found"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class LineItemNotFound(OrderError):
    status, title = 404, "Not found"

    def __init__(self, order_id: str, line_item_id: str) -> None:
        super().__init__(f"line item {line_item_id} not found in order {order_id}")


class OrderClosed(OrderError):
    status, title = 409, "Conflict"

    def __init__(self, order_id: str) -> None:
        message = f"order {order_id} is closed: closed orders are read-only"
        super().__init__(message, extra={"reason": message})


class OrderIsCancelled(OrderError):
    status, title = 409, "Conflict"

    def __init__(self, order_id: str, action: str) -> None:
        message = f"order {order_id} is cancelled: cannot {action}"
        super().__init__(message, extra={"reason": message})


class NotClosable(OrderError):
    status, title = 409, "Conflict"

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id} cannot be closed: {reason}", extra={"reason": reason})
        self.reason = reason


class StaleRevision(OrderError):
    status, title = 412, "Precondition failed"

    def __init__(self, order_id: str, expected: str, actual: int) -> None:
        super().__init__(
            f"order {order_id} is at revision {actual}, not {expected}: reload and retry", extra={"revision": actual}
        )
        self.actual = actual


class InvalidField(OrderError):
    """A client value that breaks a rule; `field` uses the request body's path (`line_items[0].quantity`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=field_errors(field, message))
        self.field, self.message = field, message


class ParameterInvalid(OrderError):
    """A SKU PARAM value that the SKU does not accept; callers prefix the field path."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter {name!r}: {message}", errors=field_errors(f"parameters.{name}", message))
        self.detail = f"parameters.{name}: {message}"
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
            + "; ".join(f"line item {li.line_item_id}: {li.reason}" for li in line_items),
            errors=[{"field": f"line_items[{li.position}]", "message": li.reason} for li in line_items],
            extra={"line_item_ids": [li.line_item_id for li in line_items]},
        )
        self.line_items = line_items


class SkuCatalogueUnavailable(OrderError):
    status, title = 503, "Service unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the SKU catalogue did not answer: {reason}")
