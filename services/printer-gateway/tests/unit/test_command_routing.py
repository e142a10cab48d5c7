"""StartPrint routing between replicas: carried out by the owner, forwarded otherwise, once per command
whichever path it came by, and retried (not dropped) while the printer is between owners."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from printer_gateway_fakes import GatewayState, InMemoryUnitOfWork

from contracts.envelope import ContractMessage, Envelope
from contracts.printers.v1 import PrintUpdated
from contracts.queue.v1 import StartPrint, StopPrint
from contracts.shared_values import FileRef, Material
from printer_gateway.domain.lifecycle import PrintTracker
from printer_gateway.domain.model import Printer
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus
from printer_gateway.entrypoints import consumers
from printer_gateway.service_layer.handlers import Deps, DispatchPlan
from servicekit.secrets import SecretCipher
from servicekit.tracing import current_trace_id

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IDLE = PrinterStatus(
    online=True, state="idle", gcode_state="IDLE", materials=(LoadedMaterial(0, "PLA", None, None, 1),)
)


class FakeNats:
    """Where the replica listens for commands forwarded to it by the others."""

    def __init__(self) -> None:
        self.callbacks: dict[str, Any] = {}

    async def subscribe(self, subject: str, cb: Any) -> None:
        self.callbacks[subject] = cb


class ForwardedMsg:
    def __init__(self, envelope: Envelope) -> None:
        self.data, self.headers, self.reply = envelope.model_dump_json().encode(), None, "reply.1"
        self.answers: list[bytes] = []

    async def respond(self, data: bytes) -> None:
        self.answers.append(data)


class FakeBus:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.nc = FakeNats()

    def consume(self, message_type: type[ContractMessage], durable: str, handler: Any, uow_factory: Any) -> None:
        self.handlers[message_type.SUBJECT] = handler


class FakeFleet:
    instance = "gw-1"

    def __init__(self, held: set[str], owner: str | None) -> None:
        self.held, self.owner = held, owner
        self.launched: list[DispatchPlan] = []
        self.forwarded: list[tuple[str, Envelope]] = []
        self.stopped: list[str] = []
        self.launched_in_trace: list[str | None] = []

    def owns(self, printer_id: str) -> bool:
        return printer_id in self.held

    async def owner_of(self, printer_id: str) -> str | None:
        return self.owner

    async def forward(self, owner: str, envelope: Envelope) -> None:
        self.forwarded.append((owner, envelope))

    def launch(self, plan: DispatchPlan) -> None:
        self.launched.append(plan)
        self.launched_in_trace.append(current_trace_id())

    async def stop_job(self, printer_id: str) -> None:
        self.stopped.append(printer_id)

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


def stop_print() -> tuple[StopPrint, Envelope]:
    cmd = StopPrint(command_id="c2", job_id="job-1", printer_id="p1", issued_at=T0)
    envelope = Envelope(id="e2", type=cmd.SUBJECT, source="/queue", data=cmd.model_dump(mode="json"))
    return cmd, envelope


class Wired:
    """The consumers registered on a fake bus over one in-memory database."""

    def __init__(self, fleet: FakeFleet, printers: list[Printer]) -> None:
        self.database = InMemoryUnitOfWork(GatewayState(printers={p.id: p for p in printers}))
        self.bus = FakeBus()
        deps = Deps(clock=lambda: T0, cipher=SecretCipher(Fernet.generate_key().decode()))
        self.serve_forwarded = consumers.register(self.bus, self.uow, fleet, deps)  # type: ignore[arg-type]

    def uow(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(sharing=self.database)

    @property
    def printers(self) -> dict[str, Printer]:
        return self.database.state.printers

    @property
    def emitted(self) -> list[ContractMessage]:
        return self.database.messages

    async def deliver(self, message: StartPrint | StopPrint, envelope: Envelope) -> None:
        """As the bus runs a consumer: in a unit of work of its own that commits after it. The consumer leaves
        that one alone (its handlers own theirs), so here it is over a database of its own, which stays empty."""
        async with InMemoryUnitOfWork() as bus_uow:
            await self.bus.handlers[message.SUBJECT](message, envelope, bus_uow)
            await bus_uow.commit()
        assert bus_uow.state == GatewayState() and bus_uow.published == []


def wire(fleet: FakeFleet, printers: list[Printer] | None = None) -> Wired:
    return Wired(fleet, [idle_printer()] if printers is None else printers)


async def test_the_owner_carries_it_out_once_even_when_redelivered_after_the_print_ended() -> None:
    fleet = FakeFleet(held={"p1"}, owner="gw-1")
    wired = wire(fleet)
    cmd, envelope = start_print()

    await wired.deliver(cmd, envelope)
    assert wired.printers["p1"].current_job_id == "job-1"
    wired.printers["p1"].dispatch_failed("job-1")  # the job is no longer tracked, as after its end
    await wired.deliver(cmd, envelope)

    assert [plan.command.job_id for plan in fleet.launched] == ["job-1"]
    assert wired.printers["p1"].current_job_id is None


async def test_a_replica_that_does_not_hold_the_printer_forwards_to_the_owner() -> None:
    fleet = FakeFleet(held=set(), owner="gw-2")
    wired = wire(fleet)
    cmd, envelope = start_print()

    await wired.deliver(cmd, envelope)

    assert fleet.forwarded == [("gw-2", envelope)]
    assert fleet.launched == []
    assert wired.printers["p1"].current_job_id is None


@pytest.mark.parametrize("owner", [None, "gw-1"])
async def test_a_printer_between_owners_makes_the_message_retried(owner: str | None) -> None:
    fleet = FakeFleet(held=set(), owner=owner)
    wired = wire(fleet)
    cmd, envelope = start_print()

    with pytest.raises(consumers.NoOwnerYet):
        await wired.deliver(cmd, envelope)
    assert fleet.launched == [] and fleet.forwarded == []
    assert wired.database.claimed == set()


async def test_a_start_for_an_unknown_printer_is_refused_here_as_not_started_with_its_cause() -> None:
    fleet = FakeFleet(held=set(), owner=None)
    wired = wire(fleet, printers=[])
    cmd, envelope = start_print()

    await wired.deliver(cmd, envelope)

    assert fleet.launched == []
    [refusal] = wired.emitted
    assert isinstance(refusal, PrintUpdated)
    assert (refusal.job_id, refusal.status, refusal.error) == ("job-1", "not_started", "unknown printer")
    [sent] = [e for e in wired.database.published if e.type == PrintUpdated.SUBJECT]
    assert sent.causationid == envelope.id


async def test_a_stop_of_the_job_printing_tells_the_printer_once() -> None:
    fleet = FakeFleet(held={"p1"}, owner="gw-1")
    wired = wire(fleet)
    start, start_envelope = start_print()
    await wired.deliver(start, start_envelope)
    stop, envelope = stop_print()

    await wired.deliver(stop, envelope)
    await wired.deliver(stop, envelope)

    assert fleet.stopped == ["p1"]


async def test_a_command_forwarded_by_another_replica_goes_on_in_the_trace_it_came_with() -> None:
    """The print a click started is one trace, whichever replica received the StartPrint first."""
    fleet = FakeFleet(held={"p1"}, owner="gw-1")
    wired = wire(fleet)
    await wired.serve_forwarded()
    _, envelope = start_print()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    msg = ForwardedMsg(envelope.model_copy(update={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}))

    await wired.bus.nc.callbacks[fleet.forward_subject("gw-1")](msg)

    assert msg.answers == [b"ok"]
    assert fleet.launched_in_trace == [trace_id]


async def test_a_late_command_has_only_the_rest_of_its_time_to_start() -> None:
    """The queue's deadline runs from when it issued the command: one that reached the owner 30 s later (held
    back while the printer was between owners) must start within the 60 s left, not a fresh 90."""
    fleet = FakeFleet(held={"p1"}, owner="gw-1")
    wired = wire(fleet)
    cmd, _ = start_print()
    late = cmd.model_copy(update={"issued_at": T0 - timedelta(seconds=30), "deadline_seconds": 90.0})
    envelope = Envelope(id="e3", type=late.SUBJECT, source="/queue", data=late.model_dump(mode="json"))

    await wired.deliver(late, envelope)

    assert [plan.start_deadline for plan in fleet.launched] == [T0 + timedelta(seconds=60)]
    tracked = wired.printers["p1"].tracker.job
    assert tracked is not None and tracked.start_deadline == T0 + timedelta(seconds=60)
