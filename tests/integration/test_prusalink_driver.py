"""The PrusaLink driver against a simulated Prusa printer over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from printer_gateway.adapters.driver import CommandRejected
from printer_gateway.adapters.prusalink.connection import PrusaLinkConnection

from . import driver_harness as scenario
from .driver_harness import Harness, connected, gcode_job, make_harness, ready

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
    _, _, status = await connected(harness, MK4)
    assert (status.state, status.gcode_state, status.materials) == ("idle", "IDLE", ())


async def test_wrong_api_key_is_an_error_and_never_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    await scenario.wrong_api_key_is_an_error_and_never_logged(harness, MK4, caplog, "wrong-key-9173")


async def test_upload_start_and_finish_keep_the_long_name_and_end_with_the_bed_not_clear(harness: Harness) -> None:
    job_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    printer = await scenario.upload_start_and_finish_end_with_the_bed_not_clear(harness, MK4, job_id)
    assert printer.short_names[f"{job_id}.gcode"] == "0193A1~1.GCO"


async def test_a_start_while_printing_is_refused_with_a_409(harness: Harness) -> None:
    await scenario.a_start_while_printing_is_refused(harness, MK4, "409")


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
    await scenario.pause_resume_from_the_gateway_and_from_the_printer(
        harness,
        MK4,
        runout_shows={"error_reason": "needs attention: filament runout"},
        resume_after_the_printer_paused=scenario.resumed_by_the_gateway,
    )


async def test_stop_ends_the_job_cancelled(harness: Harness) -> None:
    await scenario.a_stop_ends_the_job_cancelled(harness, MK4)


async def test_a_printer_error_mid_print_fails_the_job_with_its_message(harness: Harness) -> None:
    run, failed = await scenario.a_printer_error_mid_print_fails_the_job(harness, MK4, "Thermal runaway: heatbed")
    assert failed.error_reason == "Thermal runaway: heatbed"
    mark = run.recorder.mark
    await run.printer.apply_faults({"error": None})
    await run.recorder.wait_for(lambda s: s.state == "idle", after=mark)


async def test_a_dropped_connection_mid_print_reconnects_and_the_job_stays_tracked(harness: Harness) -> None:
    await scenario.a_lost_connection_mid_print_reconnects_and_the_job_stays_tracked(
        harness, MK4, lose={"offline": True}, restore={"offline": False}
    )


async def test_a_silent_printer_goes_offline_then_comes_back(harness: Harness) -> None:
    await scenario.a_silent_printer_goes_offline_then_comes_back(harness, MK4)


async def test_a_start_too_late_is_never_sent(harness: Harness) -> None:
    await scenario.a_start_too_late_is_never_sent(harness, MK4)
