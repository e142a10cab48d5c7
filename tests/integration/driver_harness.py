"""What the tests of the HTTP printer drivers share: simulated printers on free ports, a recorder of the
statuses a driver reports with waits that have deadlines, and the print lifecycle fed from them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from printer_gateway.adapters.driver import MaterialRequirement, PrintJob
from printer_gateway.adapters.reconnecting import HttpPrinterSettings, ReconnectingDriver
from printer_gateway.domain.lifecycle import LifecycleEvent, PrintTracker
from printer_gateway.domain.printer_status import PrinterStatus
from printer_simulator.catalog import parse_printer
from printer_simulator.fleet import Fleet
from printer_simulator.http_printer import HttpSimulatedPrinter
from printer_simulator.project import build_gcode

WAIT = 10.0


@dataclass
class Recorder:
    """Collects every status a driver emits and lets a test wait for one with a deadline."""

    statuses: list[PrinterStatus] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, status: PrinterStatus) -> None:
        async with self.changed:
            self.statuses.append(status)
            self.changed.notify_all()

    @property
    def mark(self) -> int:
        return len(self.statuses)

    async def wait_for(
        self, predicate: Callable[[PrinterStatus], bool], timeout: float = WAIT, after: int = 0
    ) -> PrinterStatus:
        async def seen() -> PrinterStatus:
            async with self.changed:
                while True:
                    found = next((s for s in self.statuses[after:] if predicate(s)), None)
                    if found is not None:
                        return found
                    await self.changed.wait()

        try:
            return await asyncio.wait_for(seen(), timeout)
        except TimeoutError:
            last = self.statuses[-1] if self.statuses else None
            raise AssertionError(f"no matching status within {timeout} s; last: {last}") from None


def ready(status: PrinterStatus) -> bool:
    return status.online and status.gcode_state is not None


class Lifecycle:
    """The domain's print tracker fed with every status the driver reported, as the gateway does."""

    def __init__(self, printer_id: str, job_id: str) -> None:
        now = datetime.now(UTC)
        self.tracker = PrintTracker(printer_id, bed_clear=True).dispatch(job_id, now, now + timedelta(minutes=5))
        self.events: list[LifecycleEvent] = []
        self.seen = 0

    def follow(self, recorder: Recorder) -> list[type[LifecycleEvent]]:
        for status in recorder.statuses[self.seen :]:
            self.tracker, step = self.tracker.observe(status, datetime.now(UTC))
            self.events.extend(step)
        self.seen = len(recorder.statuses)
        return [type(e) for e in self.events]


def gcode_job(job_id: str, *, minutes: int = 10, material: str = "PLA") -> PrintJob:
    return PrintJob(
        job_id=job_id,
        file_kind="gcode",
        data=build_gcode(print_seconds=minutes * 60, layers=20),
        plate="1",
        material=MaterialRequirement(material),
    )


DriverFactory = Callable[[HttpPrinterSettings, Recorder], ReconnectingDriver]


@dataclass
class Harness:
    fleet: Fleet
    make: DriverFactory
    drivers: list[ReconnectingDriver] = field(default_factory=list)

    async def printer(self, spec: dict[str, Any]) -> HttpSimulatedPrinter:
        printer = await self.fleet.add_printer(parse_printer(spec))
        assert isinstance(printer, HttpSimulatedPrinter)
        return printer

    async def connect(self, printer: HttpSimulatedPrinter, **overrides: Any) -> tuple[ReconnectingDriver, Recorder]:
        settings = HttpPrinterSettings(
            host=printer.host,
            port=printer.mqtt_port,
            api_key=printer.spec.api_key,
            stale_after=2.0,
            poll_interval=0.1,
            reconnect_initial=0.05,
            reconnect_max=0.2,
            refused_retry_interval=30.0,
            connect_timeout=2.0,
            command_timeout=3.0,
            upload_timeout=10.0,
        )
        recorder = Recorder()
        driver = self.make(replace(settings, **overrides), recorder)
        self.drivers.append(driver)
        await driver.start()
        return driver, recorder


async def make_harness(tmp_path: Path, make: DriverFactory) -> AsyncIterator[Harness]:
    fleet = Fleet(tmp_path / "sim", time_scale=600.0, report_interval=0.1)
    harness = Harness(fleet, make)
    try:
        yield harness
    finally:
        for driver in harness.drivers:
            await driver.close()
        await fleet.stop()
