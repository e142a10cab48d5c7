"""What the skus service consumes: OrderChanged, to know which SKUs open orders still use."""

from __future__ import annotations

from collections.abc import Callable

from contracts.envelope import Envelope
from contracts.orders.v1 import OrderChanged
from servicekit.messaging import Bus
from skus.service_layer import handlers
from skus.service_layer.unit_of_work import UnitOfWork

ORDER_CHANGED_DURABLE = "skus__order_changed"


async def on_order_changed(message: OrderChanged, envelope: Envelope, uow: UnitOfWork) -> None:
    await handlers.record_order_usage(message, uow)


def register(bus: Bus, uow_factory: Callable[[], UnitOfWork]) -> None:
    bus.consume(OrderChanged, ORDER_CHANGED_DURABLE, on_order_changed, uow_factory)
