"""HTTP routes of the orders service, path for path as in API.md: each translates the request into a
command (or a query), calls one handler (or view) and shapes its result into the answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse

from orders.adapters.queries import STATUSES, BadCursor, OrderSearch
from orders.domain import commands
from orders.domain.results import OrderWithSkus
from orders.entrypoints.schemas import (
    CloseOrdersIn,
    LineItemIn,
    LineItemPatch,
    OrderIn,
    OrderPatch,
    PrintJobsIn,
)
from orders.service_layer import handlers, views
from orders.service_layer.handlers import Deps
from orders.service_layer.unit_of_work import UnitOfWork
from servicekit.pagination import Cursor, Limit, bad_cursor, decode_cursor
from servicekit.problems import Invalid

IfMatch = Annotated[str | None, Header(description="The order's ETag (its revision); 412 when stale.")]
Sort = Literal["fulfillment_date", "-fulfillment_date", "created_at", "-created_at", "order_number", "-order_number"]


def order_response(order: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(order, status_code=status_code, headers={"ETag": f'"{order["revision"]}"'})


def order_result_response(result: OrderWithSkus, status_code: int = 200) -> JSONResponse:
    return order_response(views.order_with_skus_view(result), status_code)


def parse_statuses(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    wanted = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise Invalid.field("status", f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}")
    return wanted


def router(uow_factory: Callable[[], UnitOfWork], deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["orders"])

    @api.post("/orders", status_code=201)
    async def create_order(body: OrderIn) -> JSONResponse:
        result = await handlers.create_order(
            commands.CreateOrder(
                order_number=body.order_number,
                customer_name=body.customer_name,
                customer_email=body.customer_email,
                fulfillment_date=body.fulfillment_date,
                notes=body.notes,
                line_items=tuple(li.command() for li in body.line_items),
            ),
            uow_factory(),
            deps,
        )
        response = order_result_response(result, 201)
        response.headers["Location"] = f"/api/v1/orders/{result.order.id}"
        return response

    @api.get("/orders")
    async def list_orders(
        q: Annotated[str | None, Query(max_length=200)] = None,
        status: Annotated[str | None, Query(description="One status or several, comma-separated.")] = None,
        customer: Annotated[str | None, Query(max_length=320)] = None,
        fulfillment_from: date | None = None,
        fulfillment_to: date | None = None,
        include_closed: bool = False,
        sort: Sort = "-created_at",
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> JSONResponse:
        search = OrderSearch(
            q=q or None,
            statuses=parse_statuses(status),
            customer=customer or None,
            fulfillment_from=fulfillment_from,
            fulfillment_to=fulfillment_to,
            include_closed=include_closed,
            sort=sort,
            limit=limit,
            after=decode_cursor(cursor),
        )
        try:
            return JSONResponse(await views.orders(search, uow_factory()))
        except BadCursor as exc:
            raise bad_cursor("not a cursor of this query (was the sort changed?)") from exc

    @api.post("/orders/close")
    async def close_orders(body: CloseOrdersIn) -> JSONResponse:
        result = await handlers.close_orders(commands.CloseOrders(tuple(body.order_ids)), uow_factory(), deps)
        return JSONResponse(views.orders_closed_view(result))

    @api.get("/orders/{order_id}")
    async def get_order(order_id: str) -> JSONResponse:
        return order_response(await views.order(order_id, uow_factory()))

    @api.patch("/orders/{order_id}")
    async def update_order(order_id: str, body: OrderPatch, if_match: IfMatch = None) -> JSONResponse:
        cmd = commands.UpdateOrder(order_id, body.changes(), if_match)
        return order_result_response(await handlers.update_order(cmd, uow_factory(), deps))

    @api.post("/orders/{order_id}/line-items", status_code=201)
    async def add_line_item(order_id: str, body: LineItemIn, if_match: IfMatch = None) -> JSONResponse:
        cmd = commands.AddLineItem(order_id, body.command(), if_match)
        result = await handlers.add_line_item(cmd, uow_factory(), deps)
        response = order_result_response(result, 201)
        if result.order.line_items:
            response.headers["Location"] = f"/api/v1/orders/{order_id}/line-items/{result.order.line_items[-1].id}"
        return response

    @api.patch("/orders/{order_id}/line-items/{line_item_id}")
    async def change_line_item(
        order_id: str, line_item_id: str, body: LineItemPatch, if_match: IfMatch = None
    ) -> JSONResponse:
        cmd = commands.ChangeLineItem(
            order_id,
            line_item_id,
            sku_id=body.sku_id,
            quantity=body.quantity,
            parameters=body.parameters,
            if_match=if_match,
        )
        return order_result_response(await handlers.change_line_item(cmd, uow_factory(), deps))

    @api.delete("/orders/{order_id}/line-items/{line_item_id}")
    async def remove_line_item(order_id: str, line_item_id: str, if_match: IfMatch = None) -> JSONResponse:
        cmd = commands.RemoveLineItem(order_id, line_item_id, if_match)
        return order_result_response(await handlers.remove_line_item(cmd, uow_factory(), deps))

    @api.post("/orders/{order_id}/print-jobs", status_code=202)
    async def request_print(
        order_id: str, body: Annotated[PrintJobsIn | None, Body()] = None, if_match: IfMatch = None
    ) -> JSONResponse:
        assignment = body.assignment.as_dict() if body is not None and body.assignment is not None else None
        result = await handlers.request_print(
            commands.RequestPrint(order_id, assignment, if_match), uow_factory(), deps
        )
        return JSONResponse(views.print_requested_view(result), status_code=202)

    @api.post("/orders/{order_id}/cancel")
    async def cancel_order(order_id: str, if_match: IfMatch = None) -> JSONResponse:
        cmd = commands.CancelOrder(order_id, if_match)
        return order_result_response(await handlers.cancel_order(cmd, uow_factory(), deps))

    @api.post("/orders/{order_id}/close")
    async def close_order(order_id: str, if_match: IfMatch = None) -> JSONResponse:
        cmd = commands.CloseOrder(order_id, if_match)
        return order_result_response(await handlers.close_order(cmd, uow_factory(), deps))

    @api.get("/customers")
    async def list_customers(
        q: Annotated[str | None, Query(max_length=320)] = None, limit: Limit = 50, cursor: Cursor = None
    ) -> JSONResponse:
        return JSONResponse(await views.customers(q or None, limit, cursor, uow_factory()))

    return api
