"""What the skus service consumes: OrderChanged, to know which SKUs open orders still use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from contracts.envelope import Envelope
from contracts.orders.v1 import OrderChanged
from servicekit.messaging import Bus
from servicekit.unit_of_work import SqlUnitOfWork
from skus.service_layer import handlers, messages
from skus.service_layer.handlers import Deps
from skus.service_layer.unit_of_work import UnitOfWork

ORDER_CHANGED_DURABLE = "skus__order_changed"


class HandlerOwnsTheTransaction(SqlUnitOfWork):
    """What the bus opens around a delivery when the handler owns its transaction: nothing. The bus
    still retries, dead-letters and acks after the handler returns; the handler claims the envelope in
    its own unit of work's inbox, so this claim always succeeds and this commit does nothing."""

    def __init__(self) -> None:
        """No session: nothing here touches the database."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def caused_by(self, envelope: Envelope) -> None:
        return None

    async def claim_inbox(self, consumer: str, message_id: str) -> bool:
        return True

    async def commit(self) -> None:
        return None


def order_changed_consumer(
    uow_factory: Callable[[], UnitOfWork], deps: Deps
) -> Callable[[OrderChanged, Envelope, SqlUnitOfWork], Awaitable[None]]:
    async def on_order_changed(message: OrderChanged, envelope: Envelope, delivery: SqlUnitOfWork) -> None:
        cmd = messages.record_order_usage(message, envelope, ORDER_CHANGED_DURABLE)
        await handlers.record_order_usage(cmd, uow_factory(), deps)

    return on_order_changed


def register(bus: Bus, uow_factory: Callable[[], UnitOfWork], deps: Deps) -> None:
    on_order_changed = order_changed_consumer(uow_factory, deps)
    bus.consume(OrderChanged, ORDER_CHANGED_DURABLE, on_order_changed, HandlerOwnsTheTransaction)
