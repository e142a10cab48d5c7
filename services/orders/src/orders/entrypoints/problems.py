"""The one mapping from domain errors to RFC 9457 problems."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from orders.domain.errors import (
    InvalidField,
    LineItemNotFound,
    NotClosable,
    NotPrintable,
    OrderClosed,
    OrderError,
    OrderIsCancelled,
    OrderNotFound,
    ParameterInvalid,
    SkuCatalogueUnavailable,
    StaleRevision,
)
from servicekit.problems import Conflict, Invalid, NotFound, PreconditionFailed, Problem, Unavailable, problem_response


def as_problem(exc: OrderError) -> Problem:
    if isinstance(exc, OrderNotFound | LineItemNotFound):
        return NotFound(str(exc))
    if isinstance(exc, NotClosable):
        return Conflict(str(exc), extra={"reason": exc.reason})
    if isinstance(exc, OrderClosed | OrderIsCancelled):
        return Conflict(str(exc), extra={"reason": str(exc)})
    if isinstance(exc, StaleRevision):
        return PreconditionFailed(str(exc), extra={"revision": exc.actual})
    if isinstance(exc, InvalidField):
        return Invalid.field(exc.field, exc.message)
    if isinstance(exc, ParameterInvalid):
        return Invalid.field(f"parameters.{exc.name}", exc.message)
    if isinstance(exc, NotPrintable):
        return Invalid(
            str(exc),
            errors=[{"field": f"line_items[{li.position}]", "message": li.reason} for li in exc.line_items],
            extra={"line_item_ids": [li.line_item_id for li in exc.line_items]},
        )
    if isinstance(exc, SkuCatalogueUnavailable):
        return Unavailable(str(exc))
    return Invalid(str(exc))


async def order_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrderError)
    return problem_response(as_problem(exc))
