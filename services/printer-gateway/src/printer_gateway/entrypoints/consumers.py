"""Commands from the queue. Any replica may receive one; it is carried out by the printer's owner."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from contracts.envelope import Envelope
from contracts.queue.v1 import StartPrint, StopPrint
from printer_gateway.entrypoints.fleet import Fleet
from printer_gateway.service_layer import handlers
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

    async def route(printer_id: str, envelope: Envelope, uow: UnitOfWork) -> bool:
        """True when this replica must carry the command out itself."""
        if fleet.owns(printer_id):
            return True
        owner = await fleet.owner_of(printer_id)
        if owner is None or owner == fleet.instance:
            if await uow.printers.get(printer_id) is None:
                return True
            raise NoOwnerYet(printer_id)
        await fleet.forward(owner, envelope)
        return False

    async def on_start_print(cmd: StartPrint, envelope: Envelope, uow: UnitOfWork) -> None:
        if await route(cmd.printer_id, envelope, uow):
            await start_print_here(cmd, uow)

    async def on_stop_print(cmd: StopPrint, envelope: Envelope, uow: UnitOfWork) -> None:
        if await route(cmd.printer_id, envelope, uow):
            await stop_print_here(cmd, uow)

    bus.consume(StartPrint, "printer_gateway__start_print", on_start_print, uow_factory)
    bus.consume(StopPrint, "printer_gateway__stop_print", on_stop_print, uow_factory)

    async def on_forwarded(msg: Msg) -> None:
        try:
            envelope = Envelope.model_validate_json(msg.data)
            async with uow_factory() as uow:
                uow.caused_by(envelope)
                if await uow.claim_inbox(OWNER_CONSUMER, envelope.id):
                    if envelope.type == StartPrint.SUBJECT:
                        await start_print_here(envelope.open(StartPrint), uow)
                    elif envelope.type == StopPrint.SUBJECT:
                        await stop_print_here(envelope.open(StopPrint), uow)
                    await uow.commit()
            await msg.respond(b"ok")
        except Exception as exc:
            log.exception("forwarded command failed")
            await msg.respond(f"error: {exc}".encode())

    async def serve_forwarded() -> None:
        await bus.nc.subscribe(fleet.forward_subject(fleet.instance), cb=on_forwarded)

    return serve_forwarded
