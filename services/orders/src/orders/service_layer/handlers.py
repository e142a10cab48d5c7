"""Use cases. Command handlers open and commit their own unit of work; event handlers run inside the
bus's unit of work (it commits together with the inbox mark)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.orders.v1 import OrderCancelled, OrderChanged, OrderCompleted
from contracts.queue.v1 import OrderForecastChanged, OrderJobsSummarized
from orders.domain.commands import (
    AddLineItem,
    CancelOrder,
    ChangeLineItem,
    CloseOrder,
    CloseOrders,
    CreateOrder,
    NewLineItem,
    RemoveLineItem,
    RequestPrint,
    UpdateOrder,
)
from orders.domain.errors import (
    InvalidField,
    NotClosable,
    OrderNotFound,
    ParameterInvalid,
    StaleRevision,
)
from orders.domain.model import Forecast, JobCounts, LineItem, Order, OrderLimits, PartEstimate, Sku
from orders.domain.parameters import resolve_parameters
from orders.service_layer.print_request import desired_state
from orders.service_layer.unit_of_work import OrdersUnitOfWork
from orders.service_layer.views import order_view
from servicekit.ids import Clock, IdFactory

FetchSkus = Callable[[list[str]], Awaitable[list[Sku]]]
"""Asks the SKU catalogue for SKUs the replica has not seen yet (raises SkuCatalogueUnavailable)."""

OrderJson = dict[str, Any]


@dataclass(frozen=True)
class Deps:
    clock: Clock
    ids: IdFactory
    fetch_skus: FetchSkus
    limits: OrderLimits = field(default_factory=OrderLimits)


# -- shared steps ---------------------------------------------------------------------------------


def check_revision(order: Order, if_match: str | None) -> None:
    """`If-Match` carries the ETag of the order's revision (`"7"`, `W/"7"` or `*`); stale → 412."""
    if if_match is None:
        return
    for tag in (t.strip() for t in if_match.split(",")):
        if tag == "*" or tag.removeprefix("W/").strip('"') == str(order.revision):
            return
    raise StaleRevision(order.id, if_match, order.revision)


async def _load(uow: OrdersUnitOfWork, order_id: str, if_match: str | None) -> Order:
    order = await uow.orders.get(order_id, for_update=True)
    if order is None:
        raise OrderNotFound(order_id)
    check_revision(order, if_match)
    return order


async def skus_for(
    uow: OrdersUnitOfWork, deps: Deps, ids: Iterable[str], *, fetch: Iterable[str] = ()
) -> dict[str, Sku]:
    """The replica's SKUs; ids in `fetch` it does not hold yet are asked of the catalogue (a SKU created
    a moment ago may not have reached the replica through the stream)."""
    wanted = set(ids) | set(fetch)
    found = await uow.skus.get_many(wanted)
    missing = sorted(set(fetch) - set(found))
    if missing:
        now = deps.clock()
        fetched = await deps.fetch_skus(missing)
        for sku in fetched:
            await uow.skus.upsert(sku, now)
        found.update(await uow.skus.get_many([s.id for s in fetched]))
    return found


def _prefixed(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def build_line_item(
    new: NewLineItem, prefix: str, skus: Mapping[str, Sku], line_item_id: str, limits: OrderLimits
) -> LineItem:
    limits.check_quantity(_prefixed(prefix, "quantity"), new.quantity)
    sku = skus.get(new.sku_id)
    if sku is None:
        raise InvalidField(_prefixed(prefix, "sku_id"), f"unknown SKU {new.sku_id}")
    if sku.deleted:
        raise InvalidField(_prefixed(prefix, "sku_id"), f"SKU {sku.sku} was deleted")
    if new.quantity < 1:
        raise InvalidField(_prefixed(prefix, "quantity"), "must be ≥ 1")
    try:
        parameters = resolve_parameters(sku.parameters, new.parameters)
    except ParameterInvalid as exc:
        raise InvalidField(_prefixed(prefix, f"parameters.{exc.name}"), exc.message) from exc
    return LineItem(id=line_item_id, sku_id=sku.id, quantity=new.quantity, parameters=parameters, position=0)


def announce(uow: OrdersUnitOfWork, order: Order, became_complete: bool) -> None:
    uow.emit(
        OrderChanged(
            id=order.id,
            order_number=order.order_number,
            status=order.status,
            is_complete=order.is_complete,
            customer_name=order.customer_name,
            customer_email=order.customer_email,
            sku_ids=order.sku_ids(),
            revision=order.revision,
            updated_at=order.updated_at,
        ),
        subject_id=order.id,
    )
    if became_complete and order.completed_at is not None:
        uow.emit(
            OrderCompleted(id=order.id, order_number=order.order_number, completed_at=order.completed_at),
            subject_id=order.id,
        )


async def _persist(uow: OrdersUnitOfWork, order: Order, skus: Mapping[str, Sku], now: datetime) -> None:
    """Derive status, save and announce the change."""
    became_complete = order.refresh_status(skus, now)
    await uow.orders.save(order)
    announce(uow, order, became_complete)


async def _store(uow: OrdersUnitOfWork, order: Order, skus: Mapping[str, Sku], now: datetime) -> OrderJson:
    await _persist(uow, order, skus, now)
    return order_view(order, skus)


# -- commands -------------------------------------------------------------------------------------


async def create_order(cmd: CreateOrder, uow: OrdersUnitOfWork, deps: Deps) -> OrderJson:
    deps.limits.check_line_count(len(cmd.line_items))
    for i, new in enumerate(cmd.line_items):
        deps.limits.check_quantity(f"line_items[{i}].quantity", new.quantity)
    async with uow:
        skus = await skus_for(uow, deps, (), fetch=[li.sku_id for li in cmd.line_items])
        items = [
            build_line_item(new, f"line_items[{i}]", skus, deps.ids(), deps.limits)
            for i, new in enumerate(cmd.line_items)
        ]
        for position, item in enumerate(items):
            item.position = position
        now = deps.clock()
        order = Order(
            id=deps.ids(),
            order_number=cmd.order_number,
            customer_name=cmd.customer_name,
            customer_email=cmd.customer_email,
            fulfillment_date=cmd.fulfillment_date,
            notes=cmd.notes,
            line_items=items,
            created_at=now,
            updated_at=now,
        )
        order.check_size(skus, deps.limits)
        order.refresh_status(skus, now)
        await uow.orders.add(order)
        announce(uow, order, False)
        view = order_view(order, skus)
        await uow.commit()
        return view


async def get_order(order_id: str, uow: OrdersUnitOfWork) -> OrderJson:
    async with uow:
        order = await uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order_view(order, await uow.skus.get_many(order.sku_ids()))


async def update_order(cmd: UpdateOrder, uow: OrdersUnitOfWork, deps: Deps) -> OrderJson:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        now = deps.clock()
        skus = await uow.skus.get_many(order.sku_ids())
        if not order.update_details(cmd.changes, now):
            return order_view(order, skus)
        view = await _store(uow, order, skus, now)
        await uow.commit()
        return view


async def add_line_item(cmd: AddLineItem, uow: OrdersUnitOfWork, deps: Deps) -> OrderJson:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        order.ensure_printable_state("add line items")
        skus = await skus_for(uow, deps, order.sku_ids(), fetch=[cmd.item.sku_id])
        item = build_line_item(cmd.item, "", skus, deps.ids(), deps.limits)
        now = deps.clock()
        order.add_line_item(item, now)
        order.check_size(skus, deps.limits)
        view = await _store(uow, order, skus, now)
        await uow.commit()
        return view


async def change_line_item(cmd: ChangeLineItem, uow: OrdersUnitOfWork, deps: Deps) -> OrderJson:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        order.ensure_printable_state("change line items")
        current = order.line_item(cmd.line_item_id)
        sku_id = cmd.sku_id or current.sku_id
        same_sku = sku_id == current.sku_id
        skus = await skus_for(uow, deps, order.sku_ids(), fetch=[] if same_sku else [sku_id])
        sku = skus.get(sku_id)
        kept: dict[str, Any] = {}
        if same_sku and sku is not None:
            declared = {p.name for p in sku.parameters}
            kept = {k: v for k, v in current.parameters.items() if k in declared}
        given = {**kept, **(cmd.parameters or {})}
        quantity = cmd.quantity if cmd.quantity is not None else current.quantity
        checked = build_line_item(NewLineItem(sku_id, quantity, given), "", skus, current.id, deps.limits)
        now = deps.clock()
        order.change_line_item(
            current.id, sku_id=checked.sku_id, quantity=checked.quantity, parameters=checked.parameters, now=now
        )
        order.check_size(skus, deps.limits)
        view = await _store(uow, order, skus, now)
        await uow.commit()
        return view


async def remove_line_item(cmd: RemoveLineItem, uow: OrdersUnitOfWork, deps: Deps) -> OrderJson:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        now = deps.clock()
        order.remove_line_item(cmd.line_item_id, now)
        view = await _store(uow, order, await uow.skus.get_many(order.sku_ids()), now)
        await uow.commit()
        return view


async def request_print(cmd: RequestPrint, uow: OrdersUnitOfWork, deps: Deps) -> dict[str, Any]:
    """Send the order's whole desired state to the queue, which adds and cancels jobs to match it."""
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        order.ensure_printable_state("send print jobs")
        skus = await uow.skus.get_many(order.sku_ids())
        order.check_size(skus, deps.limits)
        now = deps.clock()
        revision = order.request_print(skus, cmd.assignment, now)
        await _persist(uow, order, skus, now)
        uow.emit(desired_state(order, skus), subject_id=order.id)
        await uow.commit()
        return {"order_id": order.id, "print_revision": revision}


async def cancel_order(cmd: CancelOrder, uow: OrdersUnitOfWork, deps: Deps) -> OrderJson:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        before = order.revision
        now = deps.clock()
        tell_queue = order.cancel(now)
        skus = await uow.skus.get_many(order.sku_ids())
        if order.revision == before:
            return order_view(order, skus)
        view = await _store(uow, order, skus, now)
        if tell_queue:
            uow.emit(OrderCancelled(order_id=order.id, print_revision=order.print_revision), subject_id=order.id)
        await uow.commit()
        return view


async def close_order(cmd: CloseOrder, uow: OrdersUnitOfWork, deps: Deps) -> OrderJson:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        skus = await uow.skus.get_many(order.sku_ids())
        if order.closed:
            return order_view(order, skus)
        now = deps.clock()
        order.close(now)
        view = await _store(uow, order, skus, now)
        await uow.commit()
        return view


async def close_orders(cmd: CloseOrders, uow: OrdersUnitOfWork, deps: Deps) -> dict[str, Any]:
    """Close many orders in one transaction; each one that cannot be closed is rejected with a reason."""
    wanted = list(dict.fromkeys(cmd.order_ids))
    closed: list[str] = []
    rejected: list[dict[str, str]] = []
    async with uow:
        found = {o.id: o for o in await uow.orders.get_many(wanted, for_update=True)}
        skus = await uow.skus.get_many({sku_id for o in found.values() for sku_id in o.sku_ids()})
        now = deps.clock()
        for order_id in wanted:
            order = found.get(order_id)
            if order is None:
                rejected.append({"id": order_id, "reason": "not found"})
                continue
            if order.closed:
                closed.append(order_id)
                continue
            try:
                order.close(now)
            except NotClosable as exc:
                rejected.append({"id": order_id, "reason": exc.reason})
                continue
            await _persist(uow, order, skus, now)
            closed.append(order_id)
        await uow.commit()
    return {"closed": closed, "rejected": rejected}


# -- events ---------------------------------------------------------------------------------------


async def apply_jobs_summary(message: OrderJobsSummarized, uow: OrdersUnitOfWork, clock: Clock) -> None:
    """Take the queue's job counts (newer `sequence` wins) and derive status and completeness from them."""
    order = await uow.orders.get(message.order_id, for_update=True)
    if order is None:
        return
    per_line_item = {li_id: JobCounts(**c.model_dump()) for li_id, c in message.line_items.items()}
    now = clock()
    seen = order.summary_sequence
    totals = JobCounts(**message.totals.model_dump())
    estimates = {
        li_id: tuple(PartEstimate(e.part_id, e.jobs, e.sliced_jobs, e.grams, e.print_minutes) for e in parts)
        for li_id, parts in message.estimates.items()
    }
    changed = order.apply_job_summary(message.sequence, per_line_item, totals, now, message.print_revision, estimates)
    if order.summary_sequence == seen:
        return
    if not changed:
        await uow.orders.save(order)
        return
    await _persist(uow, order, await uow.skus.get_many(order.sku_ids()), now)


async def apply_forecast(message: OrderForecastChanged, uow: OrdersUnitOfWork) -> None:
    """Keep the queue's newest forecast of the order; an older one arriving late changes nothing."""
    await uow.orders.save_forecast(
        message.order_id, Forecast(message.generated_at, message.completes_at, message.late, message.blocked_by)
    )


async def replicate_sku(sku: Sku, uow: OrdersUnitOfWork, clock: Clock) -> None:
    """Keep the SKU replica at the newest revision seen (older or repeated messages change nothing)."""
    await uow.skus.upsert(sku, clock())
