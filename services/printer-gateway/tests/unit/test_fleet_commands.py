"""A replica commands a printer only while no survivor can have taken it over: its heartbeat surely alive,
and (before a job is sent) the lease still its own at its revision; a lost lease is let go."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from printer_gateway.adapters.leases import Lease
from printer_gateway.config import Settings
from printer_gateway.domain import commands
from printer_gateway.service_layer import fleet as fleet_module
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.fleet import MOVED_BEFORE_SENT, START_MARGIN, Fleet, Held
from printer_gateway.service_layer.handlers import Deps, DispatchPlan
from servicekit.testing import wait_until


class Leases:
    def __init__(self, *, alive: bool, held: bool) -> None:
        self.alive, self.held = alive, held

    def presumed_alive(self) -> bool:
        return self.alive

    async def still_held(self, lease: Lease) -> bool:
        return self.held


class Connection:
    def __init__(self) -> None:
        self.jobs: list[Any] = []
        self.closed = False
        self.status = None

    async def print_job(self, job: Any) -> None:
        self.jobs.append(job)

    async def close(self) -> None:
        self.closed = True


class PartFiles:
    async def fetch(self, sha256: str, bucket: str | None) -> bytes:
        return b"gcode"


def make_fleet(leases: Leases) -> tuple[Fleet, Connection]:
    deps = Deps(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC), cipher=None)  # type: ignore[arg-type]
    fleet = Fleet(Settings(), "gw-1", lambda: None, leases, None, PartFiles(), deps)  # type: ignore[arg-type]
    connection = Connection()
    fleet.held["p1"] = Held(Lease("p1", 1, 1), connection, 1)  # type: ignore[arg-type]
    return fleet, connection


def plan() -> DispatchPlan:
    command = SimpleNamespace(
        job_id="j1",
        file=SimpleNamespace(sha256="abc", bucket=None, kind="gcode.3mf", plate="1"),
        material=SimpleNamespace(type="PLA", color=None, profile=None),
        slots=(),
    )
    return DispatchPlan("p1", command)  # type: ignore[arg-type]


@pytest.fixture
def failed(monkeypatch: pytest.MonkeyPatch) -> list[commands.DispatchFailed]:
    seen: list[commands.DispatchFailed] = []

    async def dispatch_failed(cmd: commands.DispatchFailed, *_: Any) -> None:
        seen.append(cmd)

    monkeypatch.setattr(handlers, "dispatch_failed", dispatch_failed)
    return seen


@pytest.mark.parametrize("alive", [True, False])
def test_a_held_printer_is_owned_only_while_the_heartbeat_is_surely_alive(alive: bool) -> None:
    fleet, _ = make_fleet(Leases(alive=alive, held=True))

    assert fleet.owns("p1") is alive
    assert not fleet.owns("p2")


async def test_a_job_is_sent_while_the_lease_is_ours(failed: list[commands.DispatchFailed]) -> None:
    fleet, connection = make_fleet(Leases(alive=True, held=True))

    await fleet._dispatch_traced(plan(), fleet.held["p1"])

    assert [job.job_id for job in connection.jobs] == ["j1"]
    assert failed == []


async def test_a_job_is_not_sent_once_a_survivor_took_the_lease(failed: list[commands.DispatchFailed]) -> None:
    fleet, connection = make_fleet(Leases(alive=True, held=False))
    held = fleet.held["p1"]

    await fleet._dispatch_traced(plan(), held)

    assert connection.jobs == []
    assert [(f.printer_id, f.job_id) for f in failed] == [("p1", "j1")]
    assert "changed gateway replica" in failed[0].reason
    await wait_until(lambda: connection.closed, 5, "the lost printer let go", interval=0.001)
    assert "p1" not in fleet.held and not held.dispatching


async def test_no_job_is_sent_on_a_printer_let_go_meanwhile(failed: list[commands.DispatchFailed]) -> None:
    """Let go while its part file was fetched (and perhaps taken again since, by a new `Held`): the lease may
    name us at a newer revision, but this dispatch's connection is closed."""
    fleet, connection = make_fleet(Leases(alive=True, held=True))
    held = fleet.held.pop("p1")

    await fleet._dispatch_traced(plan(), held)

    assert connection.jobs == []
    assert [(f.printer_id, f.job_id) for f in failed] == [("p1", "j1")]


async def test_a_dispatch_recorded_as_its_printer_was_let_go_is_given_back_at_once(
    failed: list[commands.DispatchFailed],
) -> None:
    """Not left to its deadline: the command is spent, so no replica would ever send the job."""
    fleet, connection = make_fleet(Leases(alive=True, held=True))
    fleet.held.clear()

    fleet.launch(plan())

    await wait_until(lambda: failed, 5, "the dispatch given back", interval=0.001)
    assert [(f.printer_id, f.job_id, f.reason) for f in failed] == [("p1", "j1", MOVED_BEFORE_SENT)]
    assert connection.jobs == []


async def test_no_job_is_sent_while_the_heartbeat_may_have_expired(failed: list[commands.DispatchFailed]) -> None:
    fleet, connection = make_fleet(Leases(alive=False, held=True))

    await fleet._dispatch_traced(plan(), fleet.held["p1"])

    assert connection.jobs == [] and len(failed) == 1
    assert "p1" in fleet.held, "a lease we still hold is kept: only the command waits for certainty"


class LapsedLeases(Leases):
    """The heartbeat came back after a gap; a survivor took the lease on `taken` meanwhile."""

    def __init__(self, *, answers: bool = True) -> None:
        super().__init__(alive=False, held=True)
        self.lapses, self.answers, self.confirmed = 1, answers, list[int | None]()

    async def renew(self, lease: Lease) -> bool:
        if not self.answers:
            raise TimeoutError
        return lease.printer_id != "taken"

    def confirm_leases(self, lapses: int | None = None) -> None:
        self.confirmed.append(lapses)


async def test_after_a_heartbeat_gap_every_lease_is_checked_and_a_taken_one_let_go() -> None:
    leases = LapsedLeases()
    fleet, kept = make_fleet(leases)
    taken = Connection()
    fleet.held["taken"] = Held(Lease("taken", 1, 1), taken, 1)  # type: ignore[arg-type]

    await fleet._check_leases()

    assert sorted(fleet.held) == ["p1"] and taken.closed and not kept.closed
    assert leases.confirmed == [1]


async def test_leases_unanswered_after_a_gap_confirm_nothing() -> None:
    leases = LapsedLeases(answers=False)
    fleet, _ = make_fleet(leases)

    await fleet._check_leases()

    assert leases.confirmed == [] and "p1" in fleet.held


class RenewingLeases(Leases):
    def __init__(self) -> None:
        super().__init__(alive=True, held=True)
        self.renewed: list[str] = []

    async def renew(self, lease: Lease) -> bool:
        self.renewed.append(lease.printer_id)
        return True


@pytest.mark.parametrize(("taking", "renewed"), [(0, ["old", "older"]), (40, ["older"])])
async def test_while_a_takeover_connects_leases_are_renewed_only_half_a_ttl_old(
    taking: int, renewed: list[str]
) -> None:
    leases = RenewingLeases()
    fleet, _ = make_fleet(leases)
    fleet.held.clear()
    ttl = fleet.settings.lease_ttl_seconds
    for printer_id, age in (("fresh", 0.1 * ttl), ("old", 0.4 * ttl), ("older", 0.6 * ttl)):
        held = Held(Lease(printer_id, 1, 1), Connection(), 1)  # type: ignore[arg-type]
        held.lease.written_at = time.monotonic() - age
        fleet.held[printer_id] = held
    fleet._taking = taking

    await fleet._renew_due(list(fleet.held.items()))

    assert sorted(leases.renewed) == renewed


class SlowlyAnsweredLeases(Leases):
    """Renewals written at once whose answers come `lag` seconds later (a saturated event loop)."""

    def __init__(self) -> None:
        super().__init__(alive=True, held=True)
        self.lag = 0.0
        self.renewals = 0

    async def renew(self, lease: Lease) -> bool:
        self.renewals += 1
        lease.written_at = time.monotonic() - self.lag
        return True


async def test_a_lease_is_next_due_a_third_of_a_ttl_after_its_renewal_was_sent_not_answered() -> None:
    leases = SlowlyAnsweredLeases()
    fleet, _ = make_fleet(leases)
    ttl = fleet.settings.lease_ttl_seconds
    leases.lag = 0.4 * ttl  # the answer read 0.4 TTL after the write
    held = fleet.held["p1"]
    held.lease.written_at = time.monotonic() - ttl

    await fleet._renew_due(list(fleet.held.items()))
    assert leases.renewals == 1 and held.lease.written_at <= time.monotonic() - leases.lag
    await fleet._renew_due(list(fleet.held.items()))

    assert leases.renewals == 2, "due again a third of the TTL after the write, not the answer"


async def test_a_job_must_be_started_before_its_dispatch_deadline_less_a_margin(
    monkeypatch: pytest.MonkeyPatch, failed: list[commands.DispatchFailed]
) -> None:
    """The queue takes a dispatch back at its deadline and may send the job elsewhere: the driver is told by when
    its upload must end and the start be sent, so the printer can say it started before the deadline."""
    fleet, connection = make_fleet(Leases(alive=True, held=True))
    monkeypatch.setattr(fleet_module, "monotonic", lambda: 1000.0)
    late = plan()
    late = DispatchPlan(
        "p1",
        SimpleNamespace(**vars(late.command), deadline=timedelta(seconds=90)),  # type: ignore[arg-type]
        start_deadline=fleet.clock() + timedelta(seconds=60),  # 30 s went by before the dispatch reached us
    )

    await fleet._dispatch_traced(late, fleet.held["p1"])

    assert [job.start_by for job in connection.jobs] == [1000.0 + 60 - START_MARGIN * 90]
    assert failed == []
