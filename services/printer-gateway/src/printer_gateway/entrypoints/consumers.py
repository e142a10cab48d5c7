"""Commands from the queue. Any replica may receive one; it is carried out by the printer's owner."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from contracts.envelope import Envelope
from contracts.queue.v1 import StartPrint, StopPrint
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.fleet import CAMERA_REQUEST, Fleet
from printer_gateway.service_layer.unit_of_work import UnitOfWork
from servicekit.ids import Clock
from servicekit.messaging import Bus

log = logging.getLogger(__name__)

OWNER_CONSUMER = "printer_gateway__owner_command"


class NoOwnerYet(Exception):
    """The printer is between owners (a replica died or joined); the command is retried shortly."""


def register(
    bus: Bus, uow_factory: Callable[[], UnitOfWork], fleet: Fleet, clock: Clock
) -> Callable[[], Awaitable[None]]:
    """Declare the durable consumers; returns the start hook that serves commands forwarded to this replica."""

    async def start_print_here(cmd: StartPrint, uow: UnitOfWork) -> None:
        plan = await handlers.start_print(cmd, uow, clock)
        if plan is not None:

            async def launch() -> None:
                fleet.launch(plan)

            uow.after_commit(launch)

    async def stop_print_here(cmd: StopPrint, uow: UnitOfWork) -> None:
        if await handlers.stop_print(cmd, uow):
            printer_id = cmd.printer_id

            async def stop() -> None:
                await fleet.stop_job(printer_id)

            uow.after_commit(stop)

    async def carry_out(envelope: Envelope, uow: UnitOfWork) -> None:
        """Once per command, whichever replica or path it came by: a StartPrint redelivered after its
        print ended must not print it again."""
        if not await uow.claim_inbox(OWNER_CONSUMER, envelope.id):
            return
        if envelope.type == StartPrint.SUBJECT:
            await start_print_here(envelope.open(StartPrint), uow)
        elif envelope.type == StopPrint.SUBJECT:
            await stop_print_here(envelope.open(StopPrint), uow)

    async def route(printer_id: str, envelope: Envelope, uow: UnitOfWork) -> None:
        if fleet.owns(printer_id):
            await carry_out(envelope, uow)
            return
        owner = await fleet.owner_of(printer_id)
        if owner is None or owner == fleet.instance:
            if await uow.printers.get(printer_id) is None:
                await carry_out(envelope, uow)
                return
            raise NoOwnerYet(printer_id)
        log.info("forwarding %s for printer %s to its owner %s", envelope.type, printer_id, owner)
        await fleet.forward(owner, envelope)

    async def on_start_print(cmd: StartPrint, envelope: Envelope, uow: UnitOfWork) -> None:
        await route(cmd.printer_id, envelope, uow)

    async def on_stop_print(cmd: StopPrint, envelope: Envelope, uow: UnitOfWork) -> None:
        await route(cmd.printer_id, envelope, uow)

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
            async with uow_factory() as uow:
                uow.caused_by(envelope)
                await carry_out(envelope, uow)
                await uow.commit()
            await msg.respond(b"ok")
        except Exception as exc:
            log.exception("forwarded command failed")
            await msg.respond(f"error: {exc}".encode())

    async def serve_forwarded() -> None:
        await bus.nc.subscribe(fleet.forward_subject(fleet.instance), cb=on_forwarded)

    return serve_forwarded
