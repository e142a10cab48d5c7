"""A takeover connects its printers in waves of TAKEOVER_CONNECTS, each until its session is open (or its
failure reported), and while it runs the printers already held do not write progress-only statuses (they are
written afterwards)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from printer_gateway.adapters.leases import Lease
from printer_gateway.config import Settings
from printer_gateway.domain import commands
from printer_gateway.domain.printer_status import PrinterStatus
from printer_gateway.service_layer import fleet as fleet_module
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.fleet import Fleet, Held
from printer_gateway.service_layer.handlers import Deps
from servicekit.testing import wait_until

IDLE = PrinterStatus(online=True, state="idle", gcode_state="IDLE")
RUNNING = PrinterStatus(online=True, state="printing", gcode_state="RUNNING", progress_percent=10, subtask_name="j")


class Printers:
    async def connection_details(self, printer_ids: list[str]) -> dict[str, tuple[Any, bytes]]:
        return {pid: (SimpleNamespace(name=pid, connection_version=1), b"token") for pid in printer_ids}


class Uow:
    printers = Printers()

    async def __aenter__(self) -> Uow:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


class Cipher:
    def decrypt(self, token: bytes) -> str:
        return token.decode()


class Farm:
    """Connections that open their session, and report, only when the test lets them, counting those pending."""

    def __init__(self) -> None:
        self.pending: list[FakeConnection] = []
        self.most_pending = 0

    def make_driver(self, printer: Any, secret: str, settings: Settings, on_status: Any, decoders: Any) -> Any:
        return FakeConnection(self, on_status)


class FakeConnection:
    def __init__(self, farm: Farm, on_status: Any) -> None:
        self.farm, self.on_status = farm, on_status
        self.status: PrinterStatus | None = None
        self.attempted = asyncio.Event()
        self.muted = False
        self.mutes: list[bool] = []
        self.mute_gate: asyncio.Event | None = None
        """Set by a test to hold a mute back (its UNSUBACK slow to come)."""

    async def mute_reports(self) -> None:
        """Like the driver: the UNSUBSCRIBE goes at the call, then its UNSUBACK is awaited."""
        self.muted = True
        self.mutes.append(True)
        if self.mute_gate is not None:
            await self.mute_gate.wait()

    async def unmute_reports(self) -> None:
        """Like the driver: nothing to do unless muted."""
        if self.muted:
            self.muted = False
            self.mutes.append(False)

    async def start(self) -> None:
        self.farm.pending.append(self)
        self.farm.most_pending = max(self.farm.most_pending, len(self.farm.pending))

    def open(self) -> None:
        self.farm.pending.remove(self)
        self.attempted.set()

    async def report(self) -> None:
        if self in self.farm.pending:
            self.open()
        self.status = IDLE
        await self.on_status(IDLE)


class Writes:
    def __init__(self) -> None:
        self.statuses: list[tuple[str, PrinterStatus]] = []

    async def observe_statuses(self, cmd: commands.ObserveStatuses, *_: Any) -> frozenset[str]:
        self.statuses.extend((report.printer_id, report.status) for report in cmd.reports)
        return frozenset()


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Writes:
    writes = Writes()
    monkeypatch.setattr(handlers, "observe_statuses", writes.observe_statuses)
    return writes


@pytest.fixture
def farm(monkeypatch: pytest.MonkeyPatch) -> Farm:
    made = Farm()
    monkeypatch.setattr(fleet_module, "make_driver", made.make_driver)
    return made


MUTE_FROM = Settings().mute_reports_from


def make_fleet(connects: int, mute_from: int = MUTE_FROM) -> Fleet:
    settings = Settings(progress_write_seconds=0.0, takeover_connects=connects, mute_reports_from=mute_from)
    deps = Deps(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC), cipher=None)  # type: ignore[arg-type]
    return Fleet(settings, "gw-1", Uow, None, Cipher(), None, deps)  # type: ignore[arg-type]


async def test_a_takeover_connects_a_wave_at_a_time_each_until_its_session_opens(farm: Farm, written: Writes) -> None:
    fleet = make_fleet(connects=3)
    leases = [Lease(f"p{n}", 1, 1) for n in range(7)]
    opened: list[FakeConnection] = []

    taking = asyncio.create_task(fleet._take(leases, {}))
    await wait_until(lambda: len(farm.pending) == 3, 5, "the first wave started", interval=0.001)
    for _ in range(7):
        await wait_until(lambda: farm.pending, 5, "a connection started", interval=0.001)
        opened.append(farm.pending[0])
        farm.pending[0].open()  # no status yet: the slot is free all the same
    await taking
    for connection in opened:
        await connection.report()

    assert farm.most_pending == 3
    assert sorted(fleet.held) == sorted(lease.printer_id for lease in leases)
    assert sorted(pid for pid, _ in written.statuses) == sorted(fleet.held)


async def test_progress_of_held_printers_waits_while_a_takeover_connects(farm: Farm, written: Writes) -> None:
    fleet = make_fleet(connects=1)
    held = FakeConnection(farm, None)
    fleet.held["mine"] = Held(Lease("mine", 1, 1), held, 1)  # type: ignore[arg-type]
    await fleet._on_status("mine", RUNNING)

    taking = asyncio.create_task(fleet._take([Lease("orphan", 1, 1)], {}))
    await wait_until(lambda: farm.pending, 5, "the takeover connecting", interval=0.001)
    held.status = replace(RUNNING, progress_percent=11)
    await fleet._on_status("mine", held.status)
    paused = replace(RUNNING, progress_percent=12, gcode_state="PAUSE", state="paused")
    await fleet._on_status("mine", paused)
    await farm.pending[0].report()
    await taking
    held.status = replace(paused, state="printing", gcode_state="RUNNING", progress_percent=13)
    await fleet._on_status("mine", held.status)

    assert [s.progress_percent for pid, s in written.statuses if pid == "mine"] == [10, 12, 13]


async def test_status_writes_in_flight_stay_below_the_database_pool(
    farm: Farm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A takeover's first statuses come all at once; beyond the pool's connections each write opened one more.
    Those that wait for a writer go together, a transaction for many."""
    in_flight, most, transactions = 0, 0, 0
    release = asyncio.Event()

    async def slow_write(cmd: commands.ObserveStatuses, *_: Any) -> frozenset[str]:
        nonlocal in_flight, most, transactions
        in_flight += 1
        transactions += 1
        most = max(most, in_flight)
        await release.wait()
        in_flight -= 1
        return frozenset()

    monkeypatch.setattr(handlers, "observe_statuses", slow_write)
    fleet = make_fleet(connects=1)
    for n in range(30):
        fleet.held[f"p{n}"] = Held(Lease(f"p{n}", 1, 1), FakeConnection(farm, None), 1)  # type: ignore[arg-type]
    writes = []
    for n in range(30):  # one after another: each of the first eight has its transaction begun before the next
        writes.append(asyncio.create_task(fleet._on_status(f"p{n}", IDLE)))
        busy = min(n + 1, fleet_module.STATUS_WRITES)
        await wait_until(lambda busy=busy: in_flight == busy, 5, "a write began", interval=0.001)
    release.set()
    await asyncio.gather(*writes)

    assert most == fleet_module.STATUS_WRITES < 10
    assert transactions == fleet_module.STATUS_WRITES + 1  # the first eight alone, the 22 that waited together
    assert all(held.last_status == IDLE for held in fleet.held.values())


class FlakyLeases:
    """Acquires every printer but one, whose lease call fails as a key expiring mid-create did."""

    async def acquire(self, printer_id: str, replicas: list[str]) -> Lease | None:
        if printer_id == "p1":
            raise RuntimeError("nats: key not found")
        return Lease(printer_id, 1, 1)


async def test_one_failed_lease_call_does_not_fail_the_others() -> None:
    fleet = make_fleet(connects=3)
    fleet.leases = FlakyLeases()  # type: ignore[assignment]

    taken = [await fleet._acquire(pid, ["gw-1"]) for pid in ("p0", "p1", "p2")]

    assert [lease.printer_id if lease else None for lease in taken] == ["p0", None, "p2"]


class ListedPrinters(Printers):
    """Ten live printers; a listing waits while `held_back` is set (a slow query on a saturated CPU)."""

    def __init__(self) -> None:
        self.held_back: asyncio.Event | None = None
        self.listings = 0

    async def live_connection_versions(self) -> dict[str, int]:
        self.listings += 1
        if self.held_back is not None:
            await self.held_back.wait()
        return {f"p{n}": 1 for n in range(10)}

    async def dispatches_past_deadline(self, now: datetime) -> set[str]:
        return set()


class ListedUow(Uow):
    printers = ListedPrinters()


class LiveLeases:
    def __init__(self, replicas: list[str]) -> None:
        self.replicas = replicas

    async def live_replicas(self) -> list[str]:
        return list(self.replicas)

    async def acquire(self, printer_id: str, replicas: list[str]) -> Lease | None:
        return Lease(printer_id, 2, 2)


async def sharing_with_gw2(monkeypatch: pytest.MonkeyPatch) -> tuple[Fleet, dict[str, Held]]:
    """gw-1's fleet once a pass shared the ten printers with gw-2 (the listing fake starting clean), and its share."""
    monkeypatch.setattr(fleet_module, "CONNECT_WAIT_SECONDS", 0.0)  # the fake connections never open
    fleet = make_fleet(connects=32)
    fleet.uow_factory = ListedUow
    ListedUow.printers.held_back = None
    fleet.leases = LiveLeases(["gw-1", "gw-2"])  # type: ignore[assignment]
    await fleet.supervise_once()
    ours = dict(fleet.held)
    assert ours and len(ours) < 10
    return fleet, ours


async def test_a_dead_replicas_printers_are_taken_before_the_pass_lists_the_fleet(
    farm: Farm, written: Writes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet, _ = await sharing_with_gw2(monkeypatch)
    listed = ListedUow.printers.listings
    fleet.leases.replicas = ["gw-1"]  # type: ignore[attr-defined]
    ListedUow.printers.held_back = asyncio.Event()
    passing = asyncio.create_task(fleet.supervise_once())
    await wait_until(lambda: len(fleet.held) == 10, 5, "gw-2's printers taken over", interval=0.001)
    # taken while the pass had not listed the fleet yet, or was waiting for that listing: never after it
    await wait_until(lambda: ListedUow.printers.listings == listed + 1, 5, "the pass listing", interval=0.001)

    assert not passing.done(), "the pass's listing was still waiting"
    ListedUow.printers.held_back.set()
    await passing


async def test_a_replica_listed_gone_is_taken_over_at_once_beside_a_pass_under_way(
    farm: Farm, written: Writes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat's thread lists gw-2 gone while a pass that began with gw-2 alive waits for its listing of the
    fleet (seconds on a saturated CPU): the takeover does not wait for it, and the pass lets none of it go."""
    fleet, ours = await sharing_with_gw2(monkeypatch)
    listed = ListedUow.printers.listings
    ListedUow.printers.held_back = asyncio.Event()
    passing = asyncio.create_task(fleet.supervise_once())  # gw-2 still alive when it began
    await wait_until(
        lambda: ListedUow.printers.listings == listed + 1, 5, "the pass waiting for its listing", interval=0.001
    )
    fleet.leases.replicas = ["gw-1"]  # type: ignore[attr-defined]
    fleet._replicas_listed(["gw-1"], time.monotonic())
    await wait_until(lambda: len(fleet.held) == 10, 5, "gw-2's printers taken over", interval=0.001)
    taken = dict(fleet.held)
    ListedUow.printers.held_back.set()
    await passing

    assert fleet.held == taken, "the pass neither let go of nor took again a printer the takeover holds"
    assert all(fleet.held[pid] is held for pid, held in ours.items())


async def test_a_pass_woken_by_the_api_waits_out_the_gap_but_a_replica_change_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Registering thousands of printers woke a full pass per request; a dead replica must still be seen at once."""
    monkeypatch.setattr(fleet_module, "WOKEN_PASS_GAP_SECONDS", 3600.0)
    fleet = make_fleet(connects=1)
    passes: list[int] = []

    async def supervise_once() -> None:
        passes.append(len(passes))

    monkeypatch.setattr(fleet, "supervise_once", supervise_once)
    running = asyncio.create_task(fleet._run())
    try:
        await wait_until(lambda: passes == [0], 5, "the first pass", interval=0.001)
        fleet.wake()
        for _ in range(50):
            await asyncio.sleep(0)
        assert passes == [0], "an API wake within the gap starts no pass"
        fleet._replicas_changed.set()
        fleet.wake()
        await wait_until(lambda: passes == [0, 1], 5, "the pass for the replica change", interval=0.001)
    finally:
        running.cancel()


def hold(fleet: Fleet, farm: Farm, count: int) -> list[FakeConnection]:
    connections = [FakeConnection(farm, None) for _ in range(count)]
    for n, connection in enumerate(connections):
        fleet.held[f"mine{n}"] = Held(Lease(f"mine{n}", 1, 1), connection, 1)  # type: ignore[arg-type]
    return connections


async def test_a_big_takeover_mutes_the_printers_already_held_until_those_taken_over_reported(
    farm: Farm, written: Writes
) -> None:
    """A survivor's CPU went to its own printers' reports while the dead replica's printers waited; unmuted as soon
    as the connects were done, their full reports all came just as the last printers taken over first reported."""
    fleet = make_fleet(connects=MUTE_FROM)
    mine = hold(fleet, farm, 5)
    fleet.held["mine4"].dispatching = True  # being sent a job: its command needs the reports

    leases = [Lease(f"orphan{n}", 1, 1) for n in range(MUTE_FROM)]
    taking = asyncio.create_task(fleet._take(leases, {}, muted=fleet._mute_others(len(leases))))
    await wait_until(lambda: len(farm.pending) == len(leases), 5, "the takeover connecting", interval=0.001)
    await wait_until(lambda: all(c.muted for c in mine[:4]), 5, "the held printers muted", interval=0.001)
    assert not mine[4].muted and mine[4].mutes == []
    opened = list(farm.pending)
    for connection in opened:
        connection.open()
    await taking
    for connection in opened[:-1]:
        await connection.report()
    await wait_until(lambda: len(written.statuses) == len(opened) - 1, 5, "all but one reported", interval=0.001)
    assert all(c.muted for c in mine[:4]), "one printer taken over has not reported yet"
    await opened[-1].report()
    await wait_until(lambda: not any(c.muted for c in mine), 5, "the held printers unmuted", interval=0.001)

    assert [c.mutes for c in mine[:4]] == [[True, False]] * 4
    taken = [fleet.held[lease.printer_id].connection for lease in leases]
    assert all(c.mutes == [] for c in taken)  # type: ignore[attr-defined]


async def test_printers_taken_over_that_do_not_report_keep_the_others_muted_only_so_long(
    farm: Farm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_module, "FIRST_STATUS_WAIT_SECONDS", 0.05)
    fleet = make_fleet(connects=MUTE_FROM)
    mine = hold(fleet, farm, 2)
    await take_all(fleet, farm, orphans(), mute_held=True)  # none reports
    await wait_until(lambda: all(c.mutes == [True, False] for c in mine), 5, "unmuted all the same", interval=0.001)


def orphans(count: int = MUTE_FROM) -> list[Lease]:
    """Leases of a dead replica's printers, as many as a takeover that mutes (or `count`)."""
    return [Lease(f"o{n}", 1, 1) for n in range(count)]


async def take_all(fleet: Fleet, farm: Farm, leases: list[Lease], *, mute_held: bool = False) -> None:
    """A takeover (a dead replica's printers with `mute_held`) whose connections open once all were started."""
    muted = fleet._mute_others(len(leases)) if mute_held else None
    taking = asyncio.create_task(fleet._take(leases, {}, muted=muted))
    await wait_until(lambda: len(farm.pending) == len(leases), 5, "the takeover connecting", interval=0.001)
    for connection in list(farm.pending):
        connection.open()
    await taking


async def test_a_small_takeover_mutes_nothing(farm: Farm) -> None:
    fleet = make_fleet(connects=32)
    mine = hold(fleet, farm, 3)
    await take_all(fleet, farm, orphans(MUTE_FROM - 1), mute_held=True)
    assert all(c.mutes == [] for c in mine)


async def test_a_long_takeover_unmutes_the_held_printers_after_the_longest_mute(
    farm: Farm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_module, "MUTE_MAX_SECONDS", 0.05)
    fleet = make_fleet(connects=MUTE_FROM)
    mine = hold(fleet, farm, 2)
    taking = asyncio.create_task(fleet._take(orphans(), {}, muted=fleet._mute_others(MUTE_FROM)))
    await wait_until(lambda: all(c.mutes == [True, False] for c in mine), 5, "unmuted by the timer", interval=0.001)
    assert len(farm.pending) == MUTE_FROM, "the takeover is still connecting"
    for connection in list(farm.pending):
        connection.open()
    await taking
    await asyncio.gather(*fleet._background)
    assert all(c.mutes == [True, False] for c in mine), "unmuted once"


async def test_an_unmute_does_not_wait_for_mutes_and_none_comes_after_it(
    farm: Farm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A takeover over before its mutes were answered, or even sent, must not leave a printer muted."""
    monkeypatch.setattr(fleet_module, "MUTE_CALLS", 1)  # one mute at a time: the second one waits its turn
    monkeypatch.setattr(fleet_module, "FIRST_STATUS_WAIT_SECONDS", 0.0)  # the printers taken over never report
    fleet = make_fleet(connects=MUTE_FROM)
    slow, waiting = hold(fleet, farm, 2)
    slow.mute_gate = asyncio.Event()  # its UNSUBACK never comes
    taking = asyncio.create_task(fleet._take(orphans(), {}, muted=fleet._mute_others(MUTE_FROM)))
    await wait_until(lambda: len(farm.pending) == MUTE_FROM and slow.muted, 5, "muting", interval=0.001)
    for connection in list(farm.pending):
        connection.open()
    await taking
    await wait_until(lambda: not slow.muted, 5, "the slow one unmuted", interval=0.001)
    await asyncio.gather(*fleet._background)

    assert slow.mutes == [True, False]
    assert waiting.mutes == [] and not waiting.muted, "its mute was called off before it was sent"


async def test_new_printers_mute_nothing_however_many(farm: Farm) -> None:
    """A bulk registration (or a replica joining) is no takeover: muting every held printer on each of its passes
    only cost them a subscription and a full report each time."""
    fleet = make_fleet(connects=64)
    mine = hold(fleet, farm, 3)
    await take_all(fleet, farm, [Lease(f"new{n}", 1, 1) for n in range(64)])
    assert all(c.mutes == [] for c in mine)


async def test_a_replicas_death_mutes_the_survivors_printers_while_its_are_taken(
    farm: Farm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_module, "CONNECT_WAIT_SECONDS", 0.0)  # the fake connections never open
    monkeypatch.setattr(fleet_module, "FIRST_STATUS_WAIT_SECONDS", 0.0)  # nor report
    fleet = make_fleet(connects=32, mute_from=1)
    fleet.uow_factory = ListedUow
    ListedUow.printers.held_back = None
    fleet.leases = LiveLeases(["gw-1", "gw-2"])  # type: ignore[assignment]
    await fleet.supervise_once()
    before = {pid: held.connection for pid, held in fleet.held.items()}
    assert before and all(c.mutes == [] for c in before.values())  # type: ignore[attr-defined]

    fleet.leases.replicas = ["gw-1"]  # type: ignore[attr-defined]
    await fleet.supervise_once()
    await wait_until(lambda: not fleet._background, 5, "muted and unmuted", interval=0.001)

    assert len(fleet.held) == 10
    assert all(c.mutes == [True, False] for c in before.values())  # type: ignore[attr-defined]


FINISHED = PrinterStatus(online=True, state="finished", gcode_state="FINISH", progress_percent=100, subtask_name="j")


async def test_a_pass_never_writes_a_status_older_than_one_written_meanwhile(farm: Farm, written: Writes) -> None:
    """The pass found progress held back (11 % against 10 % written); before its write ran, the print finished and
    the connection wrote that. Writing the 11 % then stepped the printer back to printing, and the next report,
    finished again, was a second end of print: its bed marked not clear after the operator had cleared it."""
    fleet = make_fleet(connects=1)
    (connection,) = hold(fleet, farm, 1)
    connection.status = RUNNING
    await fleet._on_status("mine0", RUNNING)
    connection.status = replace(RUNNING, progress_percent=11)  # held back: only progress changed

    passing = asyncio.create_task(fleet._resync(list(fleet.held.items())))
    await asyncio.sleep(0)  # the pass has picked the printer as behind; its write has not run yet
    connection.status = FINISHED
    await fleet._on_status("mine0", FINISHED)
    await passing

    assert [status.gcode_state for _, status in written.statuses] == ["RUNNING", "FINISH"]
    assert fleet.held["mine0"].last_status == FINISHED


class GatedLeases:
    """Leases whose acquisition waits for the test; `granted` says whether they are ours in the end."""

    def __init__(self, granted: bool = True) -> None:
        self.asked: list[str] = []
        self.gate = asyncio.Event()
        self.granted = granted

    async def acquire(self, printer_id: str, live: object) -> Lease | None:
        self.asked.append(printer_id)
        await self.gate.wait()
        return Lease(printer_id, 2, 2) if self.granted else None


async def test_a_dead_replicas_printers_mute_the_held_ones_before_their_leases_are_asked_for(
    farm: Farm, written: Writes
) -> None:
    """Acquiring a hundred leases is three round trips each (a second on a saturated CPU): the held printers' reports
    are muted from the start of the takeover, and unmuted once the printers taken over have reported."""
    fleet = make_fleet(connects=MUTE_FROM)
    mine = hold(fleet, farm, 2)
    leases = GatedLeases()
    fleet.leases = leases  # type: ignore[assignment]
    versions = {f"o{n}": 1 for n in range(MUTE_FROM)} | {f"mine{n}": 1 for n in range(2)}
    taking = asyncio.create_task(fleet._take_mine(versions, ["gw-1"], mute_held=True))
    await wait_until(lambda: len(leases.asked) == MUTE_FROM, 5, "the leases asked for", interval=0.001)
    await wait_until(lambda: all(c.muted for c in mine), 5, "the held printers muted", interval=0.001)
    leases.gate.set()
    await wait_until(lambda: len(farm.pending) == MUTE_FROM, 5, "the takeover connecting", interval=0.001)
    for connection in list(farm.pending):
        await connection.report()
    await taking
    await wait_until(lambda: not any(c.muted for c in mine), 5, "the held printers unmuted", interval=0.001)
    assert [c.mutes for c in mine] == [[True, False]] * 2


async def test_a_takeover_that_acquires_nothing_unmutes_at_once(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet_module, "MUTE_MAX_SECONDS", 60.0)
    fleet = make_fleet(connects=MUTE_FROM)
    mine = hold(fleet, farm, 2)
    leases = GatedLeases(granted=False)
    leases.gate.set()
    fleet.leases = leases  # type: ignore[assignment]
    await fleet._take_mine({f"o{n}": 1 for n in range(MUTE_FROM)}, ["gw-1"], mute_held=True)
    await wait_until(lambda: all(c.mutes == [True, False] for c in mine), 5, "unmuted at once", interval=0.001)
    assert farm.pending == []
