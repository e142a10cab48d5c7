"""The OctoPrint driver against a simulated OctoPrint over real HTTP and its push WebSocket."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from printer_gateway.adapters.driver import CommandRejected
from printer_gateway.adapters.octoprint.connection import OctoPrintConnection
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

from .driver_harness import Harness, Lifecycle, gcode_job, make_harness, ready

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ENDER = {
    "name": "ender-01",
    "serial": "ender-3-v2-01",
    "protocol": "octoprint",
    "model": "Ender 3",
    "api_key": "A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6",
}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in make_harness(tmp_path, OctoPrintConnection):
        yield h


async def test_connect_reports_idle_and_no_materials(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    _, recorder = await harness.connect(printer)
    status = await recorder.wait_for(ready)
    assert (status.state, status.gcode_state, status.materials) == ("idle", "IDLE", ())


async def test_wrong_api_key_is_an_error_and_never_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    printer = await harness.printer(ENDER)
    _, recorder = await harness.connect(printer, api_key="wrong-key-9173")
    status = await recorder.wait_for(lambda s: s.state == "error")
    assert status.error_reason == WRONG_API_KEY and not status.online
    assert "wrong-key-9173" not in caplog.text


async def test_upload_with_print_and_finish_end_with_the_bed_not_clear(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    await printer.apply_faults({"print_seconds": 0.6})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    job_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    lifecycle = Lifecycle("ender", job_id)
    job = gcode_job(job_id)

    await driver.print_job(job)

    assert printer.files[f"{job_id}.gcode"] == job.data
    finished = await recorder.wait_for(lambda s: s.gcode_state == "FINISH")
    assert (finished.state, finished.progress_percent, finished.subtask_name) == ("finished", 100, job_id)
    kinds = lifecycle.follow(recorder)
    assert kinds[0] is PrintStarted and kinds[-2:] == [PrintCompleted, BedNoLongerClear]


async def test_a_start_while_printing_is_refused(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    await driver.print_job(gcode_job("job-1"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")
    with pytest.raises(CommandRejected, match="did not start it"):
        await driver.print_job(gcode_job("job-2"))
    assert printer.machine.job is not None and printer.machine.job.file == "job-1.gcode"


async def test_pause_resume_from_the_gateway_and_from_the_firmware(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("ender", "job-3")
    await driver.print_job(gcode_job("job-3"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await driver.pause()
    await recorder.wait_for(lambda s: s.state == "paused", after=recorder.mark - 1)
    await driver.resume()
    await recorder.wait_for(lambda s: s.state == "printing", after=recorder.mark - 1)
    await printer.apply_faults({"pause": True})
    runout = await recorder.wait_for(lambda s: s.state == "paused", after=recorder.mark - 1)
    assert runout.gcode_state == "PAUSE"
    await driver.resume()
    await recorder.wait_for(lambda s: s.state == "printing", after=recorder.mark - 1)

    kinds = lifecycle.follow(recorder)
    assert kinds.count(PrintPaused) == 2 and kinds.count(PrintResumed) == 2


async def test_cancel_ends_the_job_cancelled_not_failed(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("ender", "job-4")
    await driver.print_job(gcode_job("job-4"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await driver.stop_print()

    stopped = await recorder.wait_for(lambda s: s.gcode_state == "CANCELLED")
    assert stopped.state == "finished"
    kinds = lifecycle.follow(recorder)
    assert kinds[-2:] == [PrintCancelled, BedNoLongerClear] and PrintFailed not in kinds


async def test_a_printer_error_mid_print_fails_the_job_with_its_message(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("ender", "job-5")
    await driver.print_job(gcode_job("job-5"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await printer.apply_faults({"error": "Thermal runaway: heatbed"})

    failed = await recorder.wait_for(lambda s: s.state == "error")
    assert failed.error_reason == "Thermal runaway: heatbed" and failed.gcode_state == "FAILED"
    kinds = lifecycle.follow(recorder)
    assert PrintFailed in kinds and BedNoLongerClear in kinds
    mark = recorder.mark
    await printer.apply_faults({"error": None})
    back = await recorder.wait_for(lambda s: s.state != "error", after=mark)
    assert (back.state, back.gcode_state) == ("finished", "FAILED"), "operational, the failed print still shown"


async def test_a_dropped_connection_mid_print_reconnects_and_the_job_stays_tracked(harness: Harness) -> None:
    printer = await harness.printer(ENDER)
    await printer.apply_faults({"print_seconds": 3})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("ender", "job-8")
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
