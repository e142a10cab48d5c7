"""When the fleet writes a printer's status: at once for a state change, progress at most every
PROGRESS_WRITE_SECONDS, and a write that failed is made again on the next pass."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from printer_gateway.adapters.leases import Lease
from printer_gateway.config import Settings
from printer_gateway.domain import commands
from printer_gateway.domain.printer_status import PrinterStatus
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.fleet import Fleet, Held
from printer_gateway.service_layer.handlers import Deps

RUNNING = PrinterStatus(online=True, state="printing", gcode_state="RUNNING", progress_percent=10, subtask_name="j")


class FakeConnection:
    def __init__(self) -> None:
        self.status: PrinterStatus | None = None


class NoUow:
    async def __aenter__(self) -> NoUow:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


class Writes:
    """Statuses the fleet handed to the service layer; `fail_next` makes the next write fail once."""

    def __init__(self) -> None:
        self.statuses: list[PrinterStatus] = []
        self.fail_next = False

    async def observe_statuses(self, cmd: commands.ObserveStatuses, *_: Any) -> frozenset[str]:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("database unavailable")
        self.statuses.extend(report.status for report in cmd.reports)
        return frozenset()


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Writes:
    writes = Writes()
    monkeypatch.setattr(handlers, "observe_statuses", writes.observe_statuses)
    return writes


def make_fleet() -> tuple[Fleet, FakeConnection]:
    settings = Settings(progress_write_seconds=60.0)
    deps = Deps(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC), cipher=None)  # type: ignore[arg-type]
    fleet = Fleet(settings, "gw-1", NoUow, None, None, None, deps)  # type: ignore[arg-type]
    connection = FakeConnection()
    fleet.held["p1"] = Held(Lease("p1", 1, 1), connection, 1)  # type: ignore[arg-type]
    return fleet, connection


async def test_progress_alone_waits_but_a_state_change_is_written_at_once(written: Writes) -> None:
    fleet, _ = make_fleet()

    await fleet._on_status("p1", RUNNING)
    await fleet._on_status("p1", replace(RUNNING, progress_percent=11))
    await fleet._on_status("p1", replace(RUNNING, progress_percent=12, gcode_state="PAUSE", state="paused"))

    assert [s.progress_percent for s in written.statuses] == [10, 12]


async def test_a_failed_write_is_made_again_on_the_next_pass(written: Writes) -> None:
    fleet, connection = make_fleet()
    written.fail_next = True
    connection.status = RUNNING

    await fleet._on_status("p1", RUNNING)
    assert written.statuses == []
    await fleet._resync(list(fleet.held.items()))

    assert written.statuses == [RUNNING]
    await fleet._resync(list(fleet.held.items()))
    assert written.statuses == [RUNNING]
