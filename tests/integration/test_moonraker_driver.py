"""The Moonraker (Klipper) driver against a simulated Moonraker over a real WebSocket and HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from printer_gateway.adapters.moonraker.connection import MoonrakerConnection
from printer_gateway.domain.lifecycle import PrintFailed
from printer_gateway.domain.printer_status import LoadedMaterial

from . import driver_harness as scenario
from .driver_harness import Harness, Printing, connected, gcode_job, make_harness

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
    printer, recorder, status = await connected(harness, VORON)
    assert (status.state, status.gcode_state) == ("idle", "IDLE")
    assert status.materials == (LoadedMaterial(0, "PETG", "#1E90FF", None, 40),)

    printer.set_materials(())
    emptied = await recorder.wait_for(lambda s: not s.materials)
    assert emptied.state == "idle"


async def test_without_spoolman_the_printer_reports_no_materials(harness: Harness) -> None:
    _, _, status = await connected(harness, ENDER)
    assert status.state == "idle" and status.materials == ()


async def test_wrong_api_key_is_an_error_and_never_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    await scenario.wrong_api_key_is_an_error_and_never_logged(harness, VORON, caplog, "not-the-key-4242")


async def test_upload_start_and_finish_end_with_the_bed_not_clear(harness: Harness) -> None:
    await scenario.upload_start_and_finish_end_with_the_bed_not_clear(harness, VORON, "job-7")


async def test_a_start_while_printing_is_refused_with_klippers_reason(harness: Harness) -> None:
    await scenario.a_start_while_printing_is_refused(harness, VORON, "SD busy")


async def test_pause_resume_from_the_gateway_and_from_the_printer(harness: Harness) -> None:
    async def resumed_at_the_printer(run: Printing) -> None:
        await run.printer.apply_faults({"resume": True})

    run = await scenario.pause_resume_from_the_gateway_and_from_the_printer(
        harness,
        VORON,
        runout_shows={"error_reason": "Filament runout: PAUSE"},
        resume_after_the_printer_paused=resumed_at_the_printer,
    )
    assert run.lifecycle.tracker.job is not None and run.lifecycle.tracker.job.started


async def test_cancel_ends_the_job_cancelled(harness: Harness) -> None:
    await scenario.a_stop_ends_the_job_cancelled(harness, VORON)


async def test_a_klipper_shutdown_mid_print_fails_the_job_and_a_restart_makes_it_ready(harness: Harness) -> None:
    run, down = await scenario.a_printer_error_mid_print_fails_the_job(
        harness, VORON, "MCU 'mcu' shutdown: Timer too close"
    )
    assert down.error_reason == "Klipper shutdown: MCU 'mcu' shutdown: Timer too close"
    failed = next(e for e in run.lifecycle.events if isinstance(e, PrintFailed))
    assert "Timer too close" in failed.reason

    mark = run.recorder.mark
    await run.printer.apply_faults({"error": None})
    back = await run.recorder.wait_for(lambda s: s.state == "idle", after=mark)
    assert back.online and back.gcode_state == "IDLE"
    await run.printer.apply_faults({"print_seconds": 0.5})
    await run.driver.print_job(gcode_job("job-6"))
    await run.recorder.wait_for(lambda s: s.gcode_state == "FINISH" and s.subtask_name == "job-6", after=mark)


async def test_a_dropped_connection_mid_print_reconnects_and_the_job_stays_tracked(harness: Harness) -> None:
    await scenario.a_lost_connection_mid_print_reconnects_and_the_job_stays_tracked(
        harness, VORON, lose={"drop_connections": True}
    )


async def test_a_silent_printer_goes_offline_then_comes_back(harness: Harness) -> None:
    await scenario.a_silent_printer_goes_offline_then_comes_back(harness, ENDER)


async def test_a_start_too_late_is_never_sent(harness: Harness) -> None:
    await scenario.a_start_too_late_is_never_sent(harness, VORON)
