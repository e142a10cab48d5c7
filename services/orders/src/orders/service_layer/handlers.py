"""Use cases: every write handler takes its command, the unit of work and `Deps`, opens the unit of work
and commits it itself, and answers a domain result (the entrypoints shape it). A consumer's delivery is
opened by the bus (it marks the inbox there); the handler's `async with uow:` joins that transaction, so the
state change, the messages it emits and the inbox mark commit together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orders.domain import commands
from orders.domain.errors import (
    InvalidField,
    NotClosable,
    OrderNotFound,
    ParameterInvalid,
    StaleRevision,
)
from orders.domain.model import LineItem, Order, OrderLimits, Sku
from orders.domain.parameters import resolve_parameters
from orders.domain.results import CloseRefused, OrdersClosed, OrderWithSkus, PrintRequested
from orders.service_layer import messages
from orders.service_layer.unit_of_work import OrdersUnitOfWork
from servicekit.ids import Clock, IdFactory, new_id, utc_now

FetchSkus = Callable[[list[str]], Awaitable[list[Sku]]]
"""Asks the SKU catalogue for SKUs the replica has not seen yet (raises SkuCatalogueUnavailable)."""


@dataclass(frozen=True)
class Deps:
    """Time, ids and the ports and limits the handlers are given (tests pass fixed ones)."""

    clock: Clock = utc_now
    ids: IdFactory = new_id
    fetch_skus: FetchSkus = field(kw_only=True)
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


async def _skus_for(
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
    new: commands.NewLineItem, prefix: str, skus: Mapping[str, Sku], line_item_id: str, limits: OrderLimits
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
    uow.emit(messages.order_changed(order), subject_id=order.id)
    completed = messages.order_completed(order) if became_complete else None
    if completed is not None:
        uow.emit(completed, subject_id=order.id)


async def _persist(uow: OrdersUnitOfWork, order: Order, skus: Mapping[str, Sku], now: datetime) -> None:
    """Derive status, save and announce the change."""
    became_complete = order.refresh_status(skus, now)
    await uow.orders.save(order)
    announce(uow, order, became_complete)


# -- commands -------------------------------------------------------------------------------------


async def create_order(cmd: commands.CreateOrder, uow: OrdersUnitOfWork, deps: Deps) -> OrderWithSkus:
    deps.limits.check_line_count(len(cmd.line_items))
    for i, new in enumerate(cmd.line_items):
        deps.limits.check_quantity(f"line_items[{i}].quantity", new.quantity)
    async with uow:
        skus = await _skus_for(uow, deps, (), fetch=[li.sku_id for li in cmd.line_items])
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
        await uow.commit()
        return OrderWithSkus(order, skus)


async def update_order(cmd: commands.UpdateOrder, uow: OrdersUnitOfWork, deps: Deps) -> OrderWithSkus:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        now = deps.clock()
        skus = await uow.skus.get_many(order.sku_ids())
        if not order.update_details(cmd.changes, now):
            return OrderWithSkus(order, skus)
        await _persist(uow, order, skus, now)
        await uow.commit()
        return OrderWithSkus(order, skus)


async def add_line_item(cmd: commands.AddLineItem, uow: OrdersUnitOfWork, deps: Deps) -> OrderWithSkus:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        order.ensure_printable_state("add line items")
        skus = await _skus_for(uow, deps, order.sku_ids(), fetch=[cmd.item.sku_id])
        item = build_line_item(cmd.item, "", skus, deps.ids(), deps.limits)
        now = deps.clock()
        order.add_line_item(item, now)
        order.check_size(skus, deps.limits)
        await _persist(uow, order, skus, now)
        await uow.commit()
        return OrderWithSkus(order, skus)


async def change_line_item(cmd: commands.ChangeLineItem, uow: OrdersUnitOfWork, deps: Deps) -> OrderWithSkus:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        order.ensure_printable_state("change line items")
        current = order.line_item(cmd.line_item_id)
        sku_id = cmd.sku_id or current.sku_id
        same_sku = sku_id == current.sku_id
        skus = await _skus_for(uow, deps, order.sku_ids(), fetch=[] if same_sku else [sku_id])
        sku = skus.get(sku_id)
        kept: dict[str, Any] = {}
        if same_sku and sku is not None:
            declared = {p.name for p in sku.parameters}
            kept = {k: v for k, v in current.parameters.items() if k in declared}
        given = {**kept, **(cmd.parameters or {})}
        quantity = cmd.quantity if cmd.quantity is not None else current.quantity
        checked = build_line_item(commands.NewLineItem(sku_id, quantity, given), "", skus, current.id, deps.limits)
        now = deps.clock()
        order.change_line_item(
            current.id, sku_id=checked.sku_id, quantity=checked.quantity, parameters=checked.parameters, now=now
        )
        order.check_size(skus, deps.limits)
        await _persist(uow, order, skus, now)
        await uow.commit()
        return OrderWithSkus(order, skus)


async def remove_line_item(cmd: commands.RemoveLineItem, uow: OrdersUnitOfWork, deps: Deps) -> OrderWithSkus:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        now = deps.clock()
        order.remove_line_item(cmd.line_item_id, now)
        skus = await uow.skus.get_many(order.sku_ids())
        await _persist(uow, order, skus, now)
        await uow.commit()
        return OrderWithSkus(order, skus)


async def request_print(cmd: commands.RequestPrint, uow: OrdersUnitOfWork, deps: Deps) -> PrintRequested:
    """Send the order's whole desired state to the queue, which adds and cancels jobs to match it."""
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        order.ensure_printable_state("send print jobs")
        skus = await uow.skus.get_many(order.sku_ids())
        order.check_size(skus, deps.limits)
        now = deps.clock()
        revision = order.request_print(skus, cmd.assignment, now)
        await _persist(uow, order, skus, now)
        uow.emit(messages.desired_state(order, skus), subject_id=order.id)
        await uow.commit()
        return PrintRequested(order.id, revision)


async def cancel_order(cmd: commands.CancelOrder, uow: OrdersUnitOfWork, deps: Deps) -> OrderWithSkus:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        before = order.revision
        now = deps.clock()
        tell_queue = order.cancel(now)
        skus = await uow.skus.get_many(order.sku_ids())
        if order.revision == before:
            return OrderWithSkus(order, skus)
        await _persist(uow, order, skus, now)
        if tell_queue:
            uow.emit(messages.order_cancelled(order), subject_id=order.id)
        await uow.commit()
        return OrderWithSkus(order, skus)


async def close_order(cmd: commands.CloseOrder, uow: OrdersUnitOfWork, deps: Deps) -> OrderWithSkus:
    async with uow:
        order = await _load(uow, cmd.order_id, cmd.if_match)
        skus = await uow.skus.get_many(order.sku_ids())
        if order.closed:
            return OrderWithSkus(order, skus)
        now = deps.clock()
        order.close(now)
        await _persist(uow, order, skus, now)
        await uow.commit()
        return OrderWithSkus(order, skus)


async def close_orders(cmd: commands.CloseOrders, uow: OrdersUnitOfWork, deps: Deps) -> OrdersClosed:
    """Close many orders in one transaction; each one that cannot be closed is refused with a reason."""
    wanted = list(dict.fromkeys(cmd.order_ids))
    closed: list[str] = []
    refused: list[CloseRefused] = []
    async with uow:
        found = {o.id: o for o in await uow.orders.get_many(wanted, for_update=True)}
        skus = await uow.skus.get_many({sku_id for o in found.values() for sku_id in o.sku_ids()})
        now = deps.clock()
        for order_id in wanted:
            order = found.get(order_id)
            if order is None:
                refused.append(CloseRefused(order_id, "not found"))
                continue
            if order.closed:
                closed.append(order_id)
                continue
            try:
                order.close(now)
            except NotClosable as exc:
                refused.append(CloseRefused(order_id, exc.reason))
                continue
            await _persist(uow, order, skus, now)
            closed.append(order_id)
        await uow.commit()
    return OrdersClosed(tuple(closed), tuple(refused))


# -- from the bus ---------------------------------------------------------------------------------


async def apply_jobs_summary(cmd: commands.ApplyJobsSummary, uow: OrdersUnitOfWork, deps: Deps) -> None:
    """Take the queue's job counts (newer `sequence` wins) and derive status and completeness from them."""
    async with uow:
        order = await uow.orders.get(cmd.order_id, for_update=True)
        if order is not None:
            now = deps.clock()
            seen = order.summary_sequence
            changed = order.apply_job_summary(
                cmd.sequence, cmd.line_items, cmd.totals, now, cmd.print_revision, cmd.estimates
            )
            if order.summary_sequence != seen:
                if changed:
                    await _persist(uow, order, await uow.skus.get_many(order.sku_ids()), now)
                else:
                    await uow.orders.save(order)
        await uow.commit()


async def record_forecast(cmd: commands.RecordForecast, uow: OrdersUnitOfWork, deps: Deps) -> None:
    """Keep the queue's newest forecast of the order; an older one arriving late changes nothing."""
    async with uow:
        await uow.orders.save_forecast(cmd.order_id, cmd.forecast)
        await uow.commit()


async def replicate_sku(cmd: commands.ReplicateSku, uow: OrdersUnitOfWork, deps: Deps) -> None:
    """Keep the SKU replica at the newest revision seen (older or repeated messages change nothing)."""
    async with uow:
        await uow.skus.upsert(cmd.sku, deps.clock())
        await uow.commit()
