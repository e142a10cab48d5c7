"""The OctoPrint driver against a simulated OctoPrint over real HTTP and its push WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from printer_gateway.adapters.octoprint.connection import OctoPrintConnection
from printer_gateway.domain.lifecycle import PrintFailed

from . import driver_harness as scenario
from .driver_harness import Harness, connected, make_harness

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
    _, _, status = await connected(harness, ENDER)
    assert (status.state, status.gcode_state, status.materials) == ("idle", "IDLE", ())


async def test_wrong_api_key_is_an_error_and_never_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    await scenario.wrong_api_key_is_an_error_and_never_logged(harness, ENDER, caplog, "wrong-key-9173")


async def test_upload_with_print_and_finish_end_with_the_bed_not_clear(harness: Harness) -> None:
    await scenario.upload_start_and_finish_end_with_the_bed_not_clear(
        harness, ENDER, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    )


async def test_a_start_while_printing_is_refused(harness: Harness) -> None:
    await scenario.a_start_while_printing_is_refused(harness, ENDER, "did not start it")


async def test_pause_resume_from_the_gateway_and_from_the_firmware(harness: Harness) -> None:
    await scenario.pause_resume_from_the_gateway_and_from_the_printer(
        harness,
        ENDER,
        runout_shows={"gcode_state": "PAUSE"},
        resume_after_the_printer_paused=scenario.resumed_by_the_gateway,
    )


async def test_cancel_ends_the_job_cancelled_not_failed(harness: Harness) -> None:
    kinds = await scenario.a_stop_ends_the_job_cancelled(harness, ENDER)
    assert PrintFailed not in kinds


async def test_a_printer_error_mid_print_fails_the_job_with_its_message(harness: Harness) -> None:
    run, failed = await scenario.a_printer_error_mid_print_fails_the_job(harness, ENDER, "Thermal runaway: heatbed")
    assert failed.error_reason == "Thermal runaway: heatbed" and failed.gcode_state == "FAILED"
    mark = run.recorder.mark
    await run.printer.apply_faults({"error": None})
    back = await run.recorder.wait_for(lambda s: s.state != "error", after=mark)
    assert (back.state, back.gcode_state) == ("finished", "FAILED"), "operational, the failed print still shown"


async def test_a_dropped_connection_mid_print_reconnects_and_the_job_stays_tracked(harness: Harness) -> None:
    await scenario.a_lost_connection_mid_print_reconnects_and_the_job_stays_tracked(
        harness, ENDER, lose={"drop_connections": True}
    )


async def test_a_silent_printer_goes_offline_then_comes_back(harness: Harness) -> None:
    await scenario.a_silent_printer_goes_offline_then_comes_back(harness, ENDER)


async def test_a_start_too_late_is_never_sent(harness: Harness) -> None:
    await scenario.a_start_too_late_is_never_sent(harness, ENDER)
