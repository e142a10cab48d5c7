"""Durable consumers: each message becomes a command for its handler. The bus applies a message once: it
claims the inbox mark in the unit of work it opened and hands that to the handler, whose own block joins it,
so the change and the mark commit together. A printer turning ready gets its jobs in that same transaction; its
pass is counted by `count_printer_pass` (the matching loop's metrics)."""

from __future__ import annotations

from collections.abc import Callable

from contracts.envelope import Envelope
from contracts.orders.v1 import OrderCancelled, OrderPrintRequested
from contracts.printers.v1 import PrinterChanged, PrintUpdated
from contracts.slicer.v1 import SliceCompleted, SliceFailed
from printqueue.service_layer import handlers, messages
from printqueue.service_layer.handlers import Deps, PrinterPass
from printqueue.service_layer.unit_of_work import UnitOfWork
from servicekit.messaging import Bus


def register(
    bus: Bus,
    uow_factory: Callable[[], UnitOfWork],
    deps: Deps,
    count_printer_pass: Callable[[PrinterPass], None] = lambda _: None,
) -> None:
    async def on_print_requested(message: OrderPrintRequested, envelope: Envelope, uow: UnitOfWork) -> None:
        await handlers.reconcile_order(messages.reconcile_order(message), uow, deps)

    async def on_order_cancelled(message: OrderCancelled, envelope: Envelope, uow: UnitOfWork) -> None:
        await handlers.cancel_order(messages.cancel_order(message), uow, deps)

    async def on_printer_changed(message: PrinterChanged, envelope: Envelope, uow: UnitOfWork) -> None:
        done = await handlers.record_printer_and_dispatch(messages.record_printer(message), uow, deps)
        if done is not None:
            count_printer_pass(done)

    async def on_print_updated(message: PrintUpdated, envelope: Envelope, uow: UnitOfWork) -> None:
        await handlers.apply_print_report(messages.apply_print_report(message), uow, deps)

    async def on_slice_completed(message: SliceCompleted, envelope: Envelope, uow: UnitOfWork) -> None:
        await handlers.complete_slice(messages.complete_slice(message), uow, deps)

    async def on_slice_failed(message: SliceFailed, envelope: Envelope, uow: UnitOfWork) -> None:
        await handlers.fail_slice(messages.fail_slice(message), uow, deps)

    bus.consume(OrderPrintRequested, "queue__print_requested", on_print_requested, uow_factory)
    bus.consume(OrderCancelled, "queue__order_cancelled", on_order_cancelled, uow_factory)
    # The printer's read carries the inbox claim: a round trip fewer between a printer turning ready and its start.
    bus.consume(PrinterChanged, "queue__printer_changed", on_printer_changed, uow_factory, claim_in_handler=True)
    bus.consume(PrintUpdated, "queue__print_updated", on_print_updated, uow_factory)
    bus.consume(SliceCompleted, "queue__slice_completed", on_slice_completed, uow_factory)
    bus.consume(SliceFailed, "queue__slice_failed", on_slice_failed, uow_factory)
