"""Bus consumers: the SKU replica, and the job counts and forecasts the queue reports."""

from __future__ import annotations

from collections.abc import Callable

from contracts.envelope import Envelope
from contracts.queue.v1 import OrderForecastChanged, OrderJobsSummarized
from contracts.skus.v1 import SkuChanged
from orders.adapters.sku_catalogue import sku_from_message
from orders.service_layer import handlers
from orders.service_layer.unit_of_work import UnitOfWork
from servicekit.ids import Clock
from servicekit.messaging import Bus


def register(bus: Bus, uow_factory: Callable[[], UnitOfWork], clock: Clock) -> None:
    async def on_sku_changed(message: SkuChanged, _: Envelope, uow: UnitOfWork) -> None:
        await handlers.replicate_sku(sku_from_message(message), uow, clock)

    async def on_jobs_summarized(message: OrderJobsSummarized, _: Envelope, uow: UnitOfWork) -> None:
        await handlers.apply_jobs_summary(message, uow, clock)

    async def on_forecast_changed(message: OrderForecastChanged, _: Envelope, uow: UnitOfWork) -> None:
        await handlers.apply_forecast(message, uow)

    bus.consume(SkuChanged, "orders__sku_changed", on_sku_changed, uow_factory)
    bus.consume(OrderForecastChanged, "orders__forecast_changed", on_forecast_changed, uow_factory)
    bus.consume(OrderJobsSummarized, "orders__jobs_summarized", on_jobs_summarized, uow_factory)
