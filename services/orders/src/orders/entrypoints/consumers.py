"""Bus consumers: the SKU replica, and the job counts and forecasts the queue reports. Each translates the
contract message into a command and calls its handler on the unit of work the bus opened for the delivery
(the bus marks the inbox in it; the handler's block joins it, and all commits together)."""

from __future__ import annotations

from collections.abc import Callable

from contracts.envelope import Envelope
from contracts.queue.v1 import OrderForecastChanged, OrderJobsSummarized
from contracts.skus.v1 import SkuChanged
from orders.service_layer import handlers, messages
from orders.service_layer.handlers import Deps
from orders.service_layer.unit_of_work import UnitOfWork
from servicekit.messaging import Bus


def register(bus: Bus, uow_factory: Callable[[], UnitOfWork], deps: Deps) -> None:
    async def on_sku_changed(message: SkuChanged, _: Envelope, uow: UnitOfWork) -> None:
        await handlers.replicate_sku(messages.replicate_sku(message), uow, deps)

    async def on_jobs_summarized(message: OrderJobsSummarized, _: Envelope, uow: UnitOfWork) -> None:
        await handlers.apply_jobs_summary(messages.apply_jobs_summary(message), uow, deps)

    async def on_forecast_changed(message: OrderForecastChanged, _: Envelope, uow: UnitOfWork) -> None:
        await handlers.record_forecast(messages.record_forecast(message), uow, deps)

    bus.consume(SkuChanged, "orders__sku_changed", on_sku_changed, uow_factory)
    bus.consume(OrderForecastChanged, "orders__forecast_changed", on_forecast_changed, uow_factory)
    bus.consume(OrderJobsSummarized, "orders__jobs_summarized", on_jobs_summarized, uow_factory)
