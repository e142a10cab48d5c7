"""Bus consumers that turn farm events into webhook deliveries (durable: none is missed while the
gateway is down; inbox: none is queued twice). They translate and call the handler."""

from __future__ import annotations

from collections.abc import Callable

from api_gateway.service_layer import handlers, messages
from api_gateway.service_layer.handlers import Deps
from api_gateway.service_layer.unit_of_work import UnitOfWork
from contracts.envelope import Envelope
from contracts.orders.v1 import OrderCompleted
from contracts.queue.v1 import JobChanged
from servicekit.messaging import Bus


def register(bus: Bus, uow_factory: Callable[[], UnitOfWork], deps: Deps) -> None:
    async def on_order_completed(message: OrderCompleted, envelope: Envelope, uow: UnitOfWork) -> None:
        await handlers.enqueue_webhook_event(messages.order_completed_event(message, envelope), uow, deps)

    async def on_job_changed(message: JobChanged, envelope: Envelope, uow: UnitOfWork) -> None:
        cmd = messages.job_changed_event(message, envelope)
        if cmd is not None:
            await handlers.enqueue_webhook_event(cmd, uow, deps)

    # New events only: a gateway that first starts does not replay the streams' history to its webhooks.
    bus.consume(
        OrderCompleted, "api_gateway__webhook_order_completed", on_order_completed, uow_factory, deliver_new_only=True
    )
    bus.consume(JobChanged, "api_gateway__webhook_job_changed", on_job_changed, uow_factory, deliver_new_only=True)
