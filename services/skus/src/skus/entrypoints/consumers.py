"""What the skus service consumes: OrderChanged, to know which SKUs open orders still use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from contracts.envelope import Envelope
from contracts.orders.v1 import OrderChanged
from servicekit.messaging import Bus
from skus.service_layer import handlers, messages
from skus.service_layer.handlers import Deps
from skus.service_layer.unit_of_work import UnitOfWork

ORDER_CHANGED_DURABLE = "skus__order_changed"


def order_changed_consumer(deps: Deps) -> Callable[[OrderChanged, Envelope, UnitOfWork], Awaitable[None]]:
    """The bus opens `uow` around each delivery and claims its envelope in the inbox; the handler's own
    block joins that unit of work, so the mark and the effect commit together."""

    async def on_order_changed(message: OrderChanged, envelope: Envelope, uow: UnitOfWork) -> None:
        await handlers.record_order_usage(messages.record_order_usage(message), uow, deps)

    return on_order_changed


def register(bus: Bus, uow_factory: Callable[[], UnitOfWork], deps: Deps) -> None:
    bus.consume(OrderChanged, ORDER_CHANGED_DURABLE, order_changed_consumer(deps), uow_factory)
