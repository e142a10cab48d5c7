"""Commands from the queue. Any replica may receive one; it is carried out by the printer's owner."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from opentelemetry.trace import SpanKind

from contracts.envelope import Envelope
from contracts.queue.v1 import StartPrint, StopPrint
from printer_gateway.service_layer import handlers, messages, views
from printer_gateway.service_layer.fleet import CAMERA_REQUEST, Fleet
from printer_gateway.service_layer.handlers import Deps
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork
from servicekit.messaging import Bus
from servicekit.tracing import span

log = logging.getLogger(__name__)


class NoOwnerYet(Exception):
    """The printer is between owners (a replica died or joined); the command is retried shortly."""


def register(
    bus: Bus, uow_factory: Callable[[], PrinterGatewayUnitOfWork], fleet: Fleet, deps: Deps
) -> Callable[[], Awaitable[None]]:
    """Declare the durable consumers; returns the start hook that serves commands forwarded to this replica.
    The bus records each delivery in its durable's inbox in a unit of work of its own; what the command does
    is the handler's, in the handler's unit of work."""

    async def carry_out(envelope: Envelope) -> None:
        """Here, on the printer this replica holds (or on none, for an unknown printer); the handler makes it
        once per envelope, whichever replica or path it came by, and the printer is told after its commit."""
        if envelope.type == StartPrint.SUBJECT:
            plan = await handlers.start_print(messages.start_print(envelope), uow_factory(), deps)
            if plan is not None:
                fleet.launch(plan)
        elif envelope.type == StopPrint.SUBJECT:
            cmd = messages.stop_print(envelope)
            if await handlers.stop_print(cmd, uow_factory(), deps):
                await fleet.stop_job(cmd.printer_id)

    async def route(printer_id: str, envelope: Envelope) -> None:
        if fleet.owns(printer_id):
            await carry_out(envelope)
            return
        owner = await fleet.owner_of(printer_id)
        if owner is None or owner == fleet.instance:
            if await views.printer(printer_id, uow_factory()) is None:
                await carry_out(envelope)
                return
            raise NoOwnerYet(printer_id)
        log.info("forwarding %s for printer %s to its owner %s", envelope.type, printer_id, owner)
        await fleet.forward(owner, envelope)

    async def on_start_print(cmd: StartPrint, envelope: Envelope, _: PrinterGatewayUnitOfWork) -> None:
        await route(cmd.printer_id, envelope)

    async def on_stop_print(cmd: StopPrint, envelope: Envelope, _: PrinterGatewayUnitOfWork) -> None:
        await route(cmd.printer_id, envelope)

    bus.consume(StartPrint, "printer_gateway__start_print", on_start_print, uow_factory)
    bus.consume(StopPrint, "printer_gateway__stop_print", on_stop_print, uow_factory)

    async def on_forwarded(msg: Msg) -> None:
        if msg.headers and msg.headers.get(CAMERA_REQUEST) and msg.reply:
            await fleet.answer_camera(msg.reply, msg.data.decode(errors="replace"))
            return
        try:
            envelope = Envelope.model_validate_json(msg.data)
            printer_id = str((envelope.data or {}).get("printer_id", ""))
            if not fleet.owns(printer_id):
                await msg.respond(b"error: not the owner (any more)")
                return
            # The command's own trace goes on here, as it does when the bus delivers it to the owner directly.
            with span(f"process forwarded {envelope.type}", kind=SpanKind.CONSUMER, parent=envelope.traceparent or ""):
                await carry_out(envelope)
            await msg.respond(b"ok")
        except Exception as exc:
            log.exception("forwarded command failed")
            await msg.respond(f"error: {exc}".encode())

    async def serve_forwarded() -> None:
        await bus.nc.subscribe(fleet.forward_subject(fleet.instance), cb=on_forwarded)

    return serve_forwarded
