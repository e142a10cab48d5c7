"""What the tests of the HTTP printer drivers share: simulated printers on free ports, a recorder of the
statuses a driver reports with waits that have deadlines, the print lifecycle fed from them, and the
scenarios every HTTP driver goes through (each driver's test module calls them with its printer and adds
what only its protocol does)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from printer_gateway.adapters.driver import CommandRejected, MaterialRequirement, PrintJob, UploadError, monotonic
from printer_gateway.adapters.reconnecting import WRONG_API_KEY, HttpPrinterSettings, ReconnectingDriver
from printer_gateway.domain.lifecycle import (
    BedNoLongerClear,
    LifecycleEvent,
    PrintCancelled,
    PrintCompleted,
    PrintFailed,
    PrintPaused,
    PrintResumed,
    PrintStarted,
    PrintTracker,
)
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


# ---- scenarios every HTTP driver goes through

Spec = dict[str, Any]


@dataclass
class Printing:
    """A simulated printer running a job its driver uploaded and started, with the lifecycle following it."""

    printer: HttpSimulatedPrinter
    driver: ReconnectingDriver
    recorder: Recorder
    lifecycle: Lifecycle


async def connected(harness: Harness, spec: Spec) -> tuple[HttpSimulatedPrinter, Recorder, PrinterStatus]:
    """A printer whose driver has reported it ready, with that first ready status."""
    printer = await harness.printer(spec)
    _, recorder = await harness.connect(printer)
    return printer, recorder, await recorder.wait_for(ready)


async def printing(harness: Harness, spec: Spec, job_id: str, *, print_seconds: float = 30) -> Printing:
    printer = await harness.printer(spec)
    await printer.apply_faults({"print_seconds": print_seconds})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle(spec["name"], job_id)
    await driver.print_job(gcode_job(job_id))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")
    return Printing(printer, driver, recorder, lifecycle)


async def wrong_api_key_is_an_error_and_never_logged(
    harness: Harness, spec: Spec, caplog: pytest.LogCaptureFixture, wrong_key: str
) -> None:
    caplog.set_level(logging.DEBUG)
    printer = await harness.printer(spec)
    _, recorder = await harness.connect(printer, api_key=wrong_key)
    status = await recorder.wait_for(lambda s: s.state == "error")
    assert status.error_reason == WRONG_API_KEY and not status.online
    assert wrong_key not in caplog.text


async def upload_start_and_finish_end_with_the_bed_not_clear(
    harness: Harness, spec: Spec, job_id: str
) -> HttpSimulatedPrinter:
    """The file lands on the printer under the job's name, prints, and the lifecycle ends bed-not-clear."""
    printer = await harness.printer(spec)
    await printer.apply_faults({"print_seconds": 0.6})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle(spec["name"], job_id)
    job = gcode_job(job_id)

    await driver.print_job(job)

    assert printer.files[f"{job_id}.gcode"] == job.data
    finished = await recorder.wait_for(lambda s: s.gcode_state == "FINISH")
    assert (finished.state, finished.progress_percent, finished.subtask_name) == ("finished", 100, job_id)
    kinds = lifecycle.follow(recorder)
    assert kinds[0] is PrintStarted and kinds[-2:] == [PrintCompleted, BedNoLongerClear]
    return printer


async def a_start_too_late_is_never_sent(harness: Harness, spec: Spec) -> None:
    """A job whose time to start has passed (its dispatch deadline near: the queue may give it to another
    printer) is neither uploaded nor started, and says why."""
    printer = await harness.printer(spec)
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)

    with pytest.raises(UploadError, match="too late to start the job before its dispatch deadline"):
        await driver.print_job(replace(gcode_job("job-late"), start_by=monotonic() - 1))

    assert printer.files.get("job-late.gcode") is None and printer.machine.job is None


async def a_start_while_printing_is_refused(harness: Harness, spec: Spec, reason: str) -> None:
    """A second job is refused with the printer's `reason` (a regular expression); the first one prints on."""
    run = await printing(harness, spec, "job-1")
    with pytest.raises(CommandRejected, match=reason):
        await run.driver.print_job(gcode_job("job-2"))
    assert run.printer.machine.job is not None and run.printer.machine.job.file == "job-1.gcode"


async def pause_resume_from_the_gateway_and_from_the_printer(
    harness: Harness,
    spec: Spec,
    *,
    runout_shows: dict[str, Any],
    resume_after_the_printer_paused: Callable[[Printing], Awaitable[None]],
) -> Printing:
    """The gateway pauses and resumes; then the printer pauses itself (a run-out, which the status shows
    with the fields `runout_shows`) and the job is resumed the protocol's way. Two pauses, two resumes."""
    run = await printing(harness, spec, "job-3")
    recorder = run.recorder

    await run.driver.pause()
    await recorder.wait_for(lambda s: s.state == "paused", after=recorder.mark - 1)
    await run.driver.resume()
    await recorder.wait_for(lambda s: s.state == "printing", after=recorder.mark - 1)
    await run.printer.apply_faults({"pause": True})
    runout = await recorder.wait_for(lambda s: s.state == "paused", after=recorder.mark - 1)
    assert {name: getattr(runout, name) for name in runout_shows} == runout_shows
    await resume_after_the_printer_paused(run)
    await recorder.wait_for(lambda s: s.state == "printing", after=recorder.mark - 1)

    kinds = run.lifecycle.follow(recorder)
    assert kinds.count(PrintPaused) == 2 and kinds.count(PrintResumed) == 2
    return run


async def resumed_by_the_gateway(run: Printing) -> None:
    await run.driver.resume()


async def a_stop_ends_the_job_cancelled(harness: Harness, spec: Spec) -> list[type[LifecycleEvent]]:
    """The lifecycle's events, which end cancelled and bed-not-clear."""
    run = await printing(harness, spec, "job-4")

    await run.driver.stop_print()

    stopped = await run.recorder.wait_for(lambda s: s.gcode_state == "CANCELLED")
    assert stopped.state == "finished"
    kinds = run.lifecycle.follow(run.recorder)
    assert kinds[-2:] == [PrintCancelled, BedNoLongerClear]
    return kinds


async def a_printer_error_mid_print_fails_the_job(
    harness: Harness, spec: Spec, message: str
) -> tuple[Printing, PrinterStatus]:
    """The printer reports the error `message` mid-print: the job fails and the bed is not clear. Returns
    the run and the error status, for the protocol's own way of showing it."""
    run = await printing(harness, spec, "job-5")

    await run.printer.apply_faults({"error": message})

    down = await run.recorder.wait_for(lambda s: s.state == "error")
    kinds = run.lifecycle.follow(run.recorder)
    assert PrintFailed in kinds and BedNoLongerClear in kinds
    return run, down


async def a_lost_connection_mid_print_reconnects_and_the_job_stays_tracked(
    harness: Harness, spec: Spec, *, lose: Spec, restore: Spec | None = None
) -> None:
    """The printer's faults `lose` cut the driver off mid-print (and `restore` ends them); the print goes
    on, and once connected again the driver reports how it ended: started once, completed once."""
    run = await printing(harness, spec, "job-8", print_seconds=3)

    await run.printer.apply_faults(lose)
    await run.recorder.wait_for(lambda s: not s.online, after=run.recorder.mark - 1)
    assert run.printer.machine.state == "printing"
    if restore is not None:
        await run.printer.apply_faults(restore)
    await run.recorder.wait_for(lambda s: s.online and s.gcode_state == "FINISH")

    kinds = run.lifecycle.follow(run.recorder)
    assert kinds.count(PrintStarted) == 1 and kinds[-2:] == [PrintCompleted, BedNoLongerClear]


async def a_silent_printer_goes_offline_then_comes_back(harness: Harness, spec: Spec) -> None:
    printer, recorder, _ = await connected(harness, spec)
    await printer.apply_faults({"silent": True})
    stale = await recorder.wait_for(lambda s: not s.online, after=recorder.mark)
    assert stale.state == "offline" and "no answer" in (stale.error_reason or "")
    await printer.apply_faults({"silent": False})
    await recorder.wait_for(ready, after=recorder.mark)
