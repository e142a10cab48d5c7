"""Bus consumers that turn farm events into webhook deliveries (durable: none is missed while the
gateway is down; inbox: none is queued twice)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from api_gateway.domain.webhooks import webhook_event
from api_gateway.service_layer.unit_of_work import UnitOfWork
from api_gateway.service_layer.webhooks import enqueue_event
from contracts.envelope import Envelope
from contracts.orders.v1 import OrderCompleted
from contracts.queue.v1 import JobChanged
from servicekit.ids import Clock, IdFactory
from servicekit.messaging import Bus


def envelope_body(envelope: Envelope) -> bytes:
    """The body POSTed: the CloudEvents envelope as published, its data inline."""
    return envelope.model_dump_json(exclude={"dataref"}, exclude_none=True).encode()


def register(
    bus: Bus, uow_factory: Callable[[], UnitOfWork], clock: Clock, ids: IdFactory, wake: Callable[[], None]
) -> None:
    async def on_order_completed(_: OrderCompleted, envelope: Envelope, uow: UnitOfWork) -> None:
        if await enqueue_event(uow, "order.completed", envelope.id, envelope_body(envelope), clock(), ids):
            uow.after_commit(_woken(wake))

    async def on_job_changed(message: JobChanged, envelope: Envelope, uow: UnitOfWork) -> None:
        event = webhook_event(JobChanged.SUBJECT, {"status": message.status})
        if event and await enqueue_event(uow, event, envelope.id, envelope_body(envelope), clock(), ids):
            uow.after_commit(_woken(wake))

    # New events only: a gateway that first starts does not replay the streams' history to its webhooks.
    bus.consume(
        OrderCompleted, "api_gateway__webhook_order_completed", on_order_completed, uow_factory, deliver_new_only=True
    )
    bus.consume(JobChanged, "api_gateway__webhook_job_changed", on_job_changed, uow_factory, deliver_new_only=True)


def _woken(wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def after() -> None:
        wake()

    return after
