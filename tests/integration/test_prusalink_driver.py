"""The PrusaLink driver against a simulated Prusa printer over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from printer_gateway.adapters.driver import CommandRejected
from printer_gateway.adapters.prusalink.connection import PrusaLinkConnection
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

MK4 = {
    "name": "mk4-01",
    "serial": "10589-3742441632141",
    "protocol": "prusalink",
    "model": "Prusa MK4",
    "api_key": "pXtR3kq9WmB2",
}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in make_harness(tmp_path, PrusaLinkConnection):
        yield h


async def test_connect_reports_idle_and_no_materials(harness: Harness) -> None:
    printer = await harness.printer(MK4)
    _, recorder = await harness.connect(printer)
    status = await recorder.wait_for(ready)
    assert (status.state, status.gcode_state, status.materials) == ("idle", "IDLE", ())


async def test_wrong_api_key_is_an_error_and_never_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    printer = await harness.printer(MK4)
    _, recorder = await harness.connect(printer, api_key="wrong-key-9173")
    status = await recorder.wait_for(lambda s: s.state == "error")
    assert status.error_reason == WRONG_API_KEY and not status.online
    assert "wrong-key-9173" not in caplog.text


async def test_upload_start_and_finish_keep_the_long_name_and_end_with_the_bed_not_clear(harness: Harness) -> None:
    printer = await harness.printer(MK4)
    await printer.apply_faults({"print_seconds": 0.6})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    job_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    lifecycle = Lifecycle("mk4", job_id)
    job = gcode_job(job_id)

    await driver.print_job(job)

    assert printer.files[f"{job_id}.gcode"] == job.data
    assert printer.short_names[f"{job_id}.gcode"] == "0193A1~1.GCO"
    finished = await recorder.wait_for(lambda s: s.gcode_state == "FINISH")
    assert (finished.state, finished.progress_percent, finished.subtask_name) == ("finished", 100, job_id)
    kinds = lifecycle.follow(recorder)
    assert kinds[0] is PrintStarted and kinds[-2:] == [PrintCompleted, BedNoLongerClear]


async def test_a_start_while_printing_is_refused_with_a_409(harness: Harness) -> None:
    printer = await harness.printer(MK4)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    await driver.print_job(gcode_job("job-1"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")
    with pytest.raises(CommandRejected, match="409"):
        await driver.print_job(gcode_job("job-2"))
    assert printer.machine.job is not None and printer.machine.job.file == "job-1.gcode"


async def test_gcode_sliced_for_another_prusa_model_is_refused_and_its_own_prints(harness: Harness) -> None:
    """As the firmware's strict printer-type check: the start G-code's `M862.3 P "MK3S"` on an MK4 is a
    409 naming why, nothing starts; the same part sliced for the MK4 prints."""
    printer = await harness.printer(MK4)
    await printer.apply_faults({"print_seconds": 0.6})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    for_mk3s = gcode_job("for-mk3s")
    for_mk3s = replace(for_mk3s, data=b'M862.3 P "MK3S" ; printer model check\n' + for_mk3s.data)
    with pytest.raises(CommandRejected, match="sliced for a different printer type"):
        await driver.print_job(for_mk3s)
    assert printer.machine.prints_started == 0 and printer.gcode_state == "IDLE"
    for_mk4 = gcode_job("for-mk4")
    await driver.print_job(replace(for_mk4, data=b'M862.3 P "MK4" ; printer model check\n' + for_mk4.data))
    finished = await recorder.wait_for(lambda s: s.gcode_state == "FINISH")
    assert finished.subtask_name == "for-mk4" and printer.machine.prints_started == 1


async def test_pause_resume_from_the_gateway_and_a_run_out_that_needs_attention(harness: Harness) -> None:
    printer = await harness.printer(MK4)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("mk4", "job-3")
    await driver.print_job(gcode_job("job-3"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await driver.pause()
    await recorder.wait_for(lambda s: s.state == "paused", after=recorder.mark - 1)
    await driver.resume()
    await recorder.wait_for(lambda s: s.state == "printing", after=recorder.mark - 1)
    await printer.apply_faults({"pause": True})
    runout = await recorder.wait_for(lambda s: s.state == "paused", after=recorder.mark - 1)
    assert runout.error_reason == "needs attention: filament runout"
    await driver.resume()
    await recorder.wait_for(lambda s: s.state == "printing", after=recorder.mark - 1)

    kinds = lifecycle.follow(recorder)
    assert kinds.count(PrintPaused) == 2 and kinds.count(PrintResumed) == 2


async def test_stop_ends_the_job_cancelled(harness: Harness) -> None:
    printer = await harness.printer(MK4)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("mk4", "job-4")
    await driver.print_job(gcode_job("job-4"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await driver.stop_print()

    stopped = await recorder.wait_for(lambda s: s.gcode_state == "CANCELLED")
    assert stopped.state == "finished"
    assert lifecycle.follow(recorder)[-2:] == [PrintCancelled, BedNoLongerClear]


async def test_a_printer_error_mid_print_fails_the_job_with_its_message(harness: Harness) -> None:
    printer = await harness.printer(MK4)
    await printer.apply_faults({"print_seconds": 30})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("mk4", "job-5")
    await driver.print_job(gcode_job("job-5"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await printer.apply_faults({"error": "Thermal runaway: heatbed"})

    failed = await recorder.wait_for(lambda s: s.state == "error")
    assert failed.error_reason == "Thermal runaway: heatbed"
    kinds = lifecycle.follow(recorder)
    assert PrintFailed in kinds and BedNoLongerClear in kinds
    mark = recorder.mark
    await printer.apply_faults({"error": None})
    await recorder.wait_for(lambda s: s.state == "idle", after=mark)


async def test_a_dropped_connection_mid_print_reconnects_and_the_job_stays_tracked(harness: Harness) -> None:
    printer = await harness.printer(MK4)
    await printer.apply_faults({"print_seconds": 3})
    driver, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    lifecycle = Lifecycle("mk4", "job-8")
    await driver.print_job(gcode_job("job-8"))
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING")

    await printer.apply_faults({"offline": True})
    await recorder.wait_for(lambda s: not s.online, after=recorder.mark - 1)
    assert printer.machine.state == "printing"
    await printer.apply_faults({"offline": False})
    await recorder.wait_for(lambda s: s.online and s.gcode_state == "FINISH")

    kinds = lifecycle.follow(recorder)
    assert kinds.count(PrintStarted) == 1 and kinds[-2:] == [PrintCompleted, BedNoLongerClear]


async def test_a_silent_printer_goes_offline_then_comes_back(harness: Harness) -> None:
    printer = await harness.printer(MK4)
    _, recorder = await harness.connect(printer)
    await recorder.wait_for(ready)
    await printer.apply_faults({"silent": True})
    stale = await recorder.wait_for(lambda s: not s.online, after=recorder.mark)
    assert stale.state == "offline" and "no answer" in (stale.error_reason or "")
    await printer.apply_faults({"silent": False})
    await recorder.wait_for(ready, after=recorder.mark)
