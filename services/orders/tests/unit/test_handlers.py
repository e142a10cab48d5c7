"""The service layer on the in-memory unit of work: what is stored and what is emitted."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from orders_fakes import InMemoryUnitOfWork

from contracts.orders.v1 import OrderCancelled, OrderChanged, OrderCompleted, OrderPrintRequested
from contracts.queue.v1 import JobCounts as JobCountsMessage
from contracts.queue.v1 import OrderForecastChanged, OrderJobsSummarized, PartEstimate
from orders.domain import commands
from orders.domain.errors import (
    InvalidField,
    NotClosable,
    NotPrintable,
    OrderClosed,
    SkuCatalogueUnavailable,
    StaleRevision,
)
from orders.domain.model import Forecast, MaterialGrams, Sku
from orders.domain.parameters import SkuParameter
from orders.service_layer import handlers, messages, views
from orders.service_layer.handlers import Deps

PART = {
    "part_id": "p1",
    "part_name": "Body",
    "quantity": 2,
    "material": {"type": "PLA", "color": "#112233"},
    "file": {"sha256": "a" * 64, "filename": "body.scad", "kind": "scad", "size_bytes": 10},
    "parameter_values": {"wall": 2},
    "sku_params": ["size"],
}
SKU = Sku(
    "sku-1",
    "MUG",
    "Mug",
    jobs_per_unit=2,
    parameters=(SkuParameter("size", "number", default=10, min=1, max=20),),
    materials=(MaterialGrams("PLA", "#112233", 5.0),),
    parts=(PART,),
    revision=1,
)
REMOTE = Sku("sku-remote", "REM", "Remote", jobs_per_unit=1, parts=(PART,), revision=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def uow() -> InMemoryUnitOfWork:
    store = InMemoryUnitOfWork()
    store.committed_skus.rows[SKU.id] = SKU
    return store


@pytest.fixture
def deps() -> Deps:
    counter = itertools.count(1)

    async def fetch(ids: list[str]) -> list[Sku]:
        if "sku-down" in ids:
            raise SkuCatalogueUnavailable("timeout")
        return [REMOTE] if REMOTE.id in ids else []

    return Deps(clock=Clock(), ids=lambda: f"id-{next(counter)}", fetch_skus=fetch)


def emitted(uow: InMemoryUnitOfWork, kind: type[Any]) -> list[Any]:
    return [m for m in uow.messages if isinstance(m, kind)]


async def create(uow: InMemoryUnitOfWork, deps: Deps, *items: commands.NewLineItem) -> dict[str, Any]:
    """The created order as the API shows it."""
    return views.order_with_skus_view(
        await handlers.create_order(commands.CreateOrder("A-1", line_items=items), uow, deps)
    )


async def summary(
    uow: InMemoryUnitOfWork, deps: Deps, order_id: str, sequence: int, **per_item: JobCountsMessage
) -> None:
    totals = JobCountsMessage(
        **{f: sum(getattr(c, f) for c in per_item.values()) for f in ("queued", "printing", "completed", "failed")}
    )
    message = OrderJobsSummarized(
        order_id=order_id, sequence=sequence, print_revision=1, line_items=per_item, totals=totals
    )
    await handlers.apply_jobs_summary(messages.apply_jobs_summary(message), uow, deps)


async def test_create_counts_jobs_and_fills_default_parameters(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 3))
    assert order["job_count"] == 6
    assert order["line_items"][0]["parameters"] == {"size": 10}
    assert order["materials"] == [{"type": "PLA", "color": "#112233", "grams": 15.0}]
    assert [m.status for m in emitted(uow, OrderChanged)] == ["open"]


async def test_an_unknown_sku_is_fetched_from_the_catalogue(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-remote", 2))
    assert order["line_items"][0]["sku"] == "REM"
    assert "sku-remote" in uow.committed_skus.rows


async def test_a_sku_nobody_knows_is_422_naming_the_line(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    with pytest.raises(InvalidField) as caught:
        await create(uow, deps, commands.NewLineItem("sku-1", 1), commands.NewLineItem("nope", 1))
    assert caught.value.field == "line_items[1].sku_id"
    assert uow.messages == []


async def test_a_bad_parameter_is_422_naming_it(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    with pytest.raises(InvalidField) as caught:
        await create(uow, deps, commands.NewLineItem("sku-1", 1, {"size": 99}))
    assert caught.value.field == "line_items[0].parameters.size"


async def test_print_request_carries_the_whole_desired_state(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 2, {"size": 12}))
    result = await handlers.request_print(
        commands.RequestPrint(order["id"], {"mode": "tags", "tags": ["big"]}), uow, deps
    )
    assert (result.order_id, result.print_revision) == (order["id"], 1)
    [request] = emitted(uow, OrderPrintRequested)
    assert request.print_revision == 1 and request.assignment.tags == ["big"]
    [line] = request.line_items
    assert (line.quantity, line.parameters) == (2, {"size": 12})
    assert line.parts[0].parameter_values == {"wall": 2, "size": 12}
    assert uow.committed_orders.rows[order["id"]].status == "queued"


async def test_a_deleted_sku_makes_print_jobs_422_and_sends_nothing(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 1))
    uow.committed_skus.rows["sku-1"] = Sku("sku-1", "MUG", "Mug", jobs_per_unit=2, revision=2, deleted=True)
    with pytest.raises(NotPrintable) as caught:
        await handlers.request_print(commands.RequestPrint(order["id"]), uow, deps)
    assert [li.line_item_id for li in caught.value.line_items] == [order["line_items"][0]["id"]]
    assert emitted(uow, OrderPrintRequested) == []


async def test_completion_is_announced_once(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 1))
    await handlers.request_print(commands.RequestPrint(order["id"]), uow, deps)
    li = order["line_items"][0]["id"]
    await summary(uow, deps, order["id"], 1, **{li: JobCountsMessage(printing=1, queued=1)})
    assert uow.committed_orders.rows[order["id"]].status == "printing"
    await summary(uow, deps, order["id"], 2, **{li: JobCountsMessage(completed=2)})
    await summary(uow, deps, order["id"], 2, **{li: JobCountsMessage(completed=2)})
    await summary(uow, deps, order["id"], 1, **{li: JobCountsMessage(queued=2)})
    stored = uow.committed_orders.rows[order["id"]]
    assert (stored.status, stored.is_complete) == ("completed", True)
    assert len(emitted(uow, OrderCompleted)) == 1


async def test_stale_if_match_is_refused(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    order = await create(uow, deps)
    await handlers.update_order(commands.UpdateOrder(order["id"], {"notes": "a"}, f'"{order["revision"]}"'), uow, deps)
    with pytest.raises(StaleRevision):
        await handlers.update_order(
            commands.UpdateOrder(order["id"], {"notes": "b"}, f'"{order["revision"]}"'), uow, deps
        )
    assert uow.committed_orders.rows[order["id"]].notes == "a"


async def test_close_needs_a_complete_or_cancelled_order_and_then_freezes_it(
    uow: InMemoryUnitOfWork, deps: Deps
) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 1))
    with pytest.raises(NotClosable):
        await handlers.close_order(commands.CloseOrder(order["id"]), uow, deps)
    await handlers.request_print(commands.RequestPrint(order["id"]), uow, deps)
    await handlers.cancel_order(commands.CancelOrder(order["id"]), uow, deps)
    assert [m.print_revision for m in emitted(uow, OrderCancelled)] == [2]
    closed = await handlers.close_order(commands.CloseOrder(order["id"]), uow, deps)
    assert closed.order.status == "closed"
    assert uow.committed_orders.rows[order["id"]].closed
    for attempt in (
        handlers.update_order(commands.UpdateOrder(order["id"], {"notes": "x"}), uow, deps),
        handlers.add_line_item(commands.AddLineItem(order["id"], commands.NewLineItem("sku-1", 1)), uow, deps),
        handlers.remove_line_item(commands.RemoveLineItem(order["id"], order["line_items"][0]["id"]), uow, deps),
        handlers.request_print(commands.RequestPrint(order["id"]), uow, deps),
        handlers.cancel_order(commands.CancelOrder(order["id"]), uow, deps),
    ):
        with pytest.raises(OrderClosed):
            await attempt


async def test_bulk_close_reports_each_order(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    open_order = await create(uow, deps, commands.NewLineItem("sku-1", 1))
    cancelled = await create(uow, deps)
    await handlers.cancel_order(commands.CancelOrder(cancelled["id"]), uow, deps)
    result = await handlers.close_orders(commands.CloseOrders((cancelled["id"], open_order["id"], "gone")), uow, deps)
    assert result.closed == (cancelled["id"],)
    assert [r.order_id for r in result.refused] == [open_order["id"], "gone"]
    assert views.orders_closed_view(result)["rejected"][1] == {"id": "gone", "reason": "not found"}


async def test_editing_line_items_resends_only_the_current_state(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 1), commands.NewLineItem("sku-1", 2))
    await handlers.request_print(commands.RequestPrint(order["id"]), uow, deps)
    keep, drop = (li["id"] for li in order["line_items"])
    await handlers.remove_line_item(commands.RemoveLineItem(order["id"], drop), uow, deps)
    changed = await handlers.change_line_item(
        commands.ChangeLineItem(order["id"], keep, quantity=4, parameters={"size": 3}), uow, deps
    )
    assert views.order_with_skus_view(changed)["job_count"] == 8
    await handlers.request_print(commands.RequestPrint(order["id"]), uow, deps)
    last = emitted(uow, OrderPrintRequested)[-1]
    assert [(li.line_item_id, li.quantity, li.parameters) for li in last.line_items] == [(keep, 4, {"size": 3})]
    assert last.print_revision == 2


async def test_the_catalogue_being_down_is_not_a_client_error(uow: InMemoryUnitOfWork, deps: Deps) -> None:
    with pytest.raises(SkuCatalogueUnavailable):
        await create(uow, deps, commands.NewLineItem("sku-down", 1))


async def forecast(uow: InMemoryUnitOfWork, deps: Deps, order_id: str, generated: int, **fields: Any) -> None:
    at = datetime(2026, 1, 2, generated, tzinfo=UTC)
    message = OrderForecastChanged(order_id=order_id, generated_at=at, **fields)
    await handlers.record_forecast(messages.record_forecast(message), uow, deps)


async def test_the_newest_forecast_of_an_order_with_open_jobs_is_shown_and_an_older_one_changes_nothing(
    uow: InMemoryUnitOfWork, deps: Deps
) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 1))
    assert order["forecast"] is None
    await summary(uow, deps, order["id"], 1, li=JobCountsMessage(queued=2))
    ends = datetime(2026, 1, 3, 10, tzinfo=UTC)
    await forecast(uow, deps, order["id"], 5, completes_at=None, late=True, blocked_by="no printer holds PETG #C12E1F")
    await forecast(uow, deps, order["id"], 6, completes_at=ends, late=False)
    await forecast(uow, deps, order["id"], 4, completes_at=None, late=True, blocked_by="stale")
    shown = await views.order(order["id"], uow)
    assert shown["forecast"] == {
        "completes_at": ends.isoformat(), "late": False, "blocked_by": None, "generated_at": "2026-01-02T06:00:00+00:00"
    }


async def test_once_no_job_is_open_the_forecast_is_the_completion_or_the_failed_jobs(
    uow: InMemoryUnitOfWork, deps: Deps
) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 1))
    await handlers.request_print(commands.RequestPrint(order["id"]), uow, deps)
    li = order["line_items"][0]["id"]
    await summary(uow, deps, order["id"], 1, **{li: JobCountsMessage(queued=2)})
    await forecast(uow, deps, order["id"], 5, completes_at=datetime(2026, 1, 3, tzinfo=UTC), late=False)
    await summary(uow, deps, order["id"], 2, **{li: JobCountsMessage(completed=1, failed=1)})
    failed = (await views.order(order["id"], uow))["forecast"]
    assert failed["completes_at"] is None and failed["blocked_by"] == "1 failed job waits for a retry"
    assert failed["late"] is False  # no fulfilment date
    await summary(uow, deps, order["id"], 3, **{li: JobCountsMessage(completed=2)})
    done = await views.order(order["id"], uow)
    assert done["is_complete"] and done["forecast"]["completes_at"] == done["completed_at"]


async def test_the_order_s_materials_take_the_sliced_grams_the_queue_reports(
    uow: InMemoryUnitOfWork, deps: Deps
) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 3))
    li = order["line_items"][0]["id"]
    counts = JobCountsMessage(queued=6)

    async def estimate(sequence: int, sliced_jobs: int, grams: float) -> list[dict[str, Any]]:
        message = OrderJobsSummarized(
            order_id=order["id"], sequence=sequence, print_revision=1, line_items={li: counts}, totals=counts,
            estimates={li: [PartEstimate(part_id="p1", jobs=6, sliced_jobs=sliced_jobs, grams=grams)]},
        )
        await handlers.apply_jobs_summary(messages.apply_jobs_summary(message), uow, deps)
        return list((await views.order(order["id"], uow))["materials"])

    # The part declares no weight (an OpenSCAD source): its copies not sliced yet count nothing.
    assert await estimate(1, 4, 30.0) == [{"type": "PLA", "color": "#112233", "grams": 30.0}]
    assert await estimate(2, 6, 45.5) == [{"type": "PLA", "color": "#112233", "grams": 45.5}]
    assert await estimate(2, 1, 1.0) == [{"type": "PLA", "color": "#112233", "grams": 45.5}], "an older summary"
    counted = len(emitted(uow, OrderChanged))
    assert await estimate(3, 6, 45.5) == [{"type": "PLA", "color": "#112233", "grams": 45.5}]
    assert len(emitted(uow, OrderChanged)) == counted, "the same figures again change nothing"


async def test_a_handler_joins_the_delivery_the_bus_opened_so_the_inbox_mark_commits_with_its_work(
    uow: InMemoryUnitOfWork, deps: Deps
) -> None:
    order = await create(uow, deps, commands.NewLineItem("sku-1", 1))
    cmd = commands.RecordForecast(order["id"], Forecast(datetime(2026, 1, 2, tzinfo=UTC), None, True, "no printer"))
    async with uow:  # as the bus applies a delivery: the inbox mark, the handler, then its own commit
        assert await uow.claim_inbox("orders__forecast_changed", "message-1")
        await handlers.record_forecast(cmd, uow, deps)
        assert uow.committed_orders.rows[order["id"]].forecast is None, "the handler's block joined the delivery"
        await uow.commit()
    assert ("orders__forecast_changed", "message-1") in uow.claimed
    assert uow.committed_orders.rows[order["id"]].forecast == cmd.forecast
