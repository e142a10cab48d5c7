"""Publishing the forecasts that moved: the forecast loop decides which did, this writes them to the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from printqueue.domain import commands
from printqueue.service_layer import messages
from printqueue.service_layer.unit_of_work import QueueUnitOfWork

if TYPE_CHECKING:
    from printqueue.service_layer.handlers import Deps


async def publish_forecasts(cmd: commands.PublishForecasts, uow: QueueUnitOfWork, deps: Deps) -> None:
    """One `OrderForecastChanged` per order whose forecast moved, in one transaction."""
    async with uow:
        for order in cmd.orders:
            uow.emit(messages.forecast_changed(order, cmd.generated_at), subject_id=order.order_id)
        await uow.commit()
