"""The Moonraker (Klipper) driver against a simulated Moonraker over a real WebSocket and HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from printer_gateway.adapters.driver import CommandRejected
from printer_gateway.adapters.moonraker.connection import MoonrakerConnection
from printer_gateway.adapters.reconnecting import WRONG_API_KEY
from printer_gateway.domain.lifecycle import (
    BedNoLongerClear,
    PrintCancelled,
    PrintCompleted,
    PrintFailed,
    PrintPaused,
    PrintResumed,
    PrintStarted,
)
from printer_gateway.domain.printer_status import LoadedMaterial

from .driver_harness import Harness, Lifecycle, gcode_job, make_harness, ready

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

VORON = {
    "name": "voron-01",
    "serial": "voron-01",
    "protocol": "moonraker",
    "model": "Voron 2.4",
    "api_key": "0123456789abcdef0123456789abcdef",
    "spoolman": True,
    "materials": [{"slot": 0, "type": "PETG", "color": "#1E90FF", "remain_percent": 40}],
}
ENDER = {"name": "ender-01", "serial": "ender-01", "protocol": "moonraker", "model": "Ender 3"}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in make_harness(tmp_path, MoonrakerConnection):
        yield h


async def test_connect_reports_klipper_state_and_the_active_spoolman_spool(harness: Harness) -> None:
    printer = await harness.printer(VORON)
    _, recorder = await harness.connect(printer)
    status = await recorder.wait_for(ready)
    assert (status.state, status.gcode_state) == ("idle", "IDLE")
    assert status.materials == (LoadedMaterial(0, "PETG", "#1E90FF", None, 40),)

    printer.set_materials(())
    emptied = await recorder.wait_for(lambda s: not s.materials)
    assert emptied.state == "idle"


async def test_without_spoolman_the_printer_reports_no_materials(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    _, recorder = await harness.connect(printer)
    status = await recorder.wait_for(ready)
    assert status.state == "idle" and status.materials == ()


async def test_wrong_api_key_is_an_error_and_never_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    printer = await harness.printer(VORON)
    _, recorder = await harness.connect(printer, api_key="not-the-key-4242")
    status = await recorder.wait_for(lambda s: s.state == "error")
    assert status.error_reason == WRONG_API_KEY and not status.online
    assert "not-the-key-4242" not in caplog.text


async def test_upload_start_and_finish_end_with_the_bed_not_clear(harness: Harness) -> None:
    printer = await harness.printer(VORON)
    await printer.apply_faults({"print_seconds": 0.6})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("voron", "job-7")
    job = gcode_job("job-7")

    await driver.print_job(job)

    assert printer.files["job-7.gcode"] == job.data
    finished = await recorder.wait_for(lambda s: s.gcode_state == "FINISH")
    assert (finished.state, finished.progress_percent, finished.subtask_name) == ("finished", 100, "job-7")
    kinds = lifecycle.follow(recorder)
    assert kinds[0] is PrintStarted and kinds[-2:] == [PrintCompleted, BedNoLongerClear]


async def test_a_start_while_printing_is_refused_with_klippers_reason(harness: Harness) -> None:
    printer = await harness.printer(VORON)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    await driver.print_job(gcode_job("job-1"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")
    with pytest.raises(CommandRejected, match="SD busy"):
        await driver.print_job(gcode_job("job-2"))
    assert printer.machine.job is not None and printer.machine.job.file == "job-1.gcode"


async def test_pause_resume_from_the_gateway_and_from_the_printer(harness: Harness) -> None:
    printer = await harness.printer(VORON)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("voron", "job-3")
    await driver.print_job(gcode_job("job-3"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await driver.pause()
    await recorder.wait_for(lambda s: s.state == "paused", after=recorder.mark - 1)
    await driver.resume()
    await recorder.wait_for(lambda s: s.state == "printing", after=recorder.mark - 1)
    await printer.apply_faults({"pause": True})
    runout = await recorder.wait_for(lambda s: s.state == "paused", after=recorder.mark - 1)
    assert runout.error_reason == "Filament runout: PAUSE"
    await printer.apply_faults({"resume": True})
    await recorder.wait_for(lambda s: s.state == "printing", after=recorder.mark - 1)

    kinds = lifecycle.follow(recorder)
    assert kinds.count(PrintPaused) == 2 and kinds.count(PrintResumed) == 2
    assert lifecycle.tracker.job is not None and lifecycle.tracker.job.started


async def test_cancel_ends_the_job_cancelled(harness: Harness) -> None:
    printer = await harness.printer(VORON)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("voron", "job-4")
    await driver.print_job(gcode_job("job-4"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await driver.stop_print()

    cancelled = await recorder.wait_for(lambda s: s.gcode_state == "CANCELLED")
    assert cancelled.state == "finished"
    kinds = lifecycle.follow(recorder)
    assert kinds[-2:] == [PrintCancelled, BedNoLongerClear]


async def test_a_klipper_shutdown_mid_print_fails_the_job_and_a_restart_makes_it_ready(harness: Harness) -> None:
    printer = await harness.printer(VORON)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("voron", "job-5")
    await driver.print_job(gcode_job("job-5"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await printer.apply_faults({"error": "MCU 'mcu' shutdown: Timer too close"})

    down = await recorder.wait_for(lambda s: s.state == "error")
    assert down.error_reason == "Klipper shutdown: MCU 'mcu' shutdown: Timer too close"
    kinds = lifecycle.follow(recorder)
    assert PrintFailed in kinds and BedNoLongerClear in kinds
    failed = next(e for e in lifecycle.events if isinstance(e, PrintFailed))
    assert "Timer too close" in failed.reason

    mark = recorder.mark
    await printer.apply_faults({"error": None})
    back = await recorder.wait_for(lambda s: s.state == "idle", after=mark)
    assert back.online and back.gcode_state == "IDLE"
    await printer.apply_faults({"print_seconds": 0.5})
    await driver.print_job(gcode_job("job-6"))
    await recorder.wait_for(lambda s: s.gcode_state == "FINISH" and s.subtask_name == "job-6", after=mark)


async def test_a_dropped_connection_mid_print_reconnects_and_the_job_stays_tracked(harness: Harness) -> None:
    printer = await harness.printer(VORON)
    await printer.apply_faults({"print_seconds": 3})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("voron", "job-8")
    await driver.print_job(gcode_job("job-8"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await printer.apply_faults({"drop_connections": True})
    await recorder.wait_for(lambda s: not s.online, after=recorder.mark - 1)
    assert printer.machine.state == "printing"
    await recorder.wait_for(lambda s: s.online and s.gcode_state == "FINISH")

    kinds = lifecycle.follow(recorder)
    assert kinds.count(PrintStarted) == 1 and kinds[-2:] == [PrintCompleted, BedNoLongerClear]


async def test_a_silent_printer_goes_offline_then_comes_back(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    _, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    await printer.apply_faults({"silent": True})
    stale = await recorder.wait_for(lambda s: not s.online, after=recorder.mark)
    assert stale.state == "offline" and "no answer" in (stale.error_reason or "")
    await printer.apply_faults({"silent": False})
    await recorder.wait_for(ready, after=recorder.mark)
