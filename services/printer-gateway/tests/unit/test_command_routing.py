"""StartPrint routing between replicas: carried out by the owner, forwarded otherwise, once per command
whichever path it came by, and retried (not dropped) while the printer is between owners."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.envelope import ContractMessage, Envelope
from contracts.queue.v1 import StartPrint
from contracts.shared_values import FileRef, Material
from printer_gateway.domain.lifecycle import PrintTracker
from printer_gateway.domain.model import Printer
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus
from printer_gateway.entrypoints import consumers
from printer_gateway.service_layer.handlers import DispatchPlan
from servicekit.testing import FakeUnitOfWork

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IDLE = PrinterStatus(
    online=True, state="idle", gcode_state="IDLE", materials=(LoadedMaterial(0, "PLA", None, None, 1),)
)


class FakeRepository:
    def __init__(self, printers: dict[str, Printer]) -> None:
        self.printers = printers

    async def get(self, printer_id: str, *, for_update: bool = False) -> Printer | None:
        return self.printers.get(printer_id)

    async def save(self, printer: Printer, **_: Any) -> None:
        self.printers[printer.id] = printer


class FakeUow(FakeUnitOfWork[FakeRepository]):
    """servicekit's fake unit of work over the printers; inbox marks and messages are shared across instances."""

    def __init__(self, repo: FakeRepository, inbox: set[tuple[str, str]], emitted: list[ContractMessage]) -> None:
        super().__init__(repo, source="/services/printer-gateway", claimed=inbox, messages=emitted)
        self.emitted = emitted

    def _open(self) -> None:
        self.printers = self.work


class FakeBus:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def consume(self, message_type: type[ContractMessage], durable: str, handler: Any, uow_factory: Any) -> None:
        self.handlers[message_type.SUBJECT] = handler


class FakeFleet:
    instance = "gw-1"

    def __init__(self, held: set[str], owner: str | None) -> None:
        self.held, self.owner = held, owner
        self.launched: list[DispatchPlan] = []
        self.forwarded: list[tuple[str, Envelope]] = []

    def owns(self, printer_id: str) -> bool:
        return printer_id in self.held

    async def owner_of(self, printer_id: str) -> str | None:
        return self.owner

    async def forward(self, owner: str, envelope: Envelope) -> None:
        self.forwarded.append((owner, envelope))

    def launch(self, plan: DispatchPlan) -> None:
        self.launched.append(plan)

    def forward_subject(self, owner: str) -> str:
        return f"rpc.{owner}"


def idle_printer() -> Printer:
    p = Printer(
        id="p1",
        name="p",
        model="P1S",
        protocol="bambu_lan",
        host="127.0.0.1",
        port=8883,
        ftp_port=990,
        serial="S1",
        tags=[],
        fabmatic=False,
        ca_cert=None,
        created_at=T0,
        updated_at=T0,
        tracker=PrintTracker(printer_id="p1", bed_clear=True),
    )
    p.observe(IDLE, T0)
    return p


def start_print() -> tuple[StartPrint, Envelope]:
    cmd = StartPrint(
        command_id="c1",
        job_id="job-1",
        printer_id="p1",
        order_number="1",
        part_name="cube",
        file=FileRef(sha256="a" * 64, filename="cube.gcode.3mf", kind="gcode.3mf", size_bytes=1),
        material=Material(type="PLA"),
        issued_at=T0,
    )
    envelope = Envelope(id="e1", type=cmd.SUBJECT, source="/queue", data=cmd.model_dump(mode="json"))
    return cmd, envelope


def wire(fleet: FakeFleet) -> tuple[Any, Callable[[], FakeUow], FakeRepository]:
    repo = FakeRepository({"p1": idle_printer()})
    inbox: set[tuple[str, str]] = set()
    emitted: list[ContractMessage] = []
    bus = FakeBus()
    consumers.register(bus, lambda: FakeUow(repo, inbox, emitted), fleet, lambda: T0)  # type: ignore[arg-type,return-value]
    return bus.handlers[StartPrint.SUBJECT], lambda: FakeUow(repo, inbox, emitted), repo


async def run(handler: Any, uow: FakeUow, cmd: StartPrint, envelope: Envelope) -> None:
    """As the bus runs a consumer: in one unit of work that commits."""
    async with uow:
        await handler(cmd, envelope, uow)
        await uow.commit()


async def test_the_owner_carries_it_out_once_even_when_redelivered_after_the_print_ended() -> None:
    fleet = FakeFleet(held={"p1"}, owner="gw-1")
    handler, uow, repo = wire(fleet)
    cmd, envelope = start_print()

    await run(handler, uow(), cmd, envelope)
    repo.printers["p1"].dispatch_failed("job-1")  # the job is no longer tracked, as after its end
    await run(handler, uow(), cmd, envelope)

    assert [plan.command.job_id for plan in fleet.launched] == ["job-1"]


async def test_a_replica_that_does_not_hold_the_printer_forwards_to_the_owner() -> None:
    fleet = FakeFleet(held=set(), owner="gw-2")
    handler, uow, _ = wire(fleet)
    cmd, envelope = start_print()

    await run(handler, uow(), cmd, envelope)

    assert fleet.forwarded == [("gw-2", envelope)]
    assert fleet.launched == []


@pytest.mark.parametrize("owner", [None, "gw-1"])
async def test_a_printer_between_owners_makes_the_message_retried(owner: str | None) -> None:
    fleet = FakeFleet(held=set(), owner=owner)
    handler, uow, _ = wire(fleet)
    cmd, envelope = start_print()

    with pytest.raises(consumers.NoOwnerYet):
        await run(handler, uow(), cmd, envelope)
    assert fleet.launched == [] and fleet.forwarded == []
