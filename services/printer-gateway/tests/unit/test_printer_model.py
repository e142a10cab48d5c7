"""The printer aggregate: dispatch rules, outcomes for the queue, bed flag and FabMatic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from printer_gateway.domain.lifecycle import PrintTracker
from printer_gateway.domain.model import Printer, PrinterError, UnprintableFile
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLA = (LoadedMaterial(0, "PLA", "#000000", "GFA00", 80),)


def printer(*, fabmatic: bool = False, protocol: str = "bambu_lan") -> Printer:
    p = Printer(
        id="p1",
        name="x1",
        model="X1C",
        protocol=protocol,
        host="127.0.0.1",
        port=8883,
        ftp_port=990,
        serial="S1",
        tags=[],
        fabmatic=fabmatic,
        ca_cert=None,
        created_at=T0,
        updated_at=T0,
        tracker=PrintTracker(printer_id="p1", bed_clear=True),
    )
    p.observe(status("IDLE"), T0)
    return p


def status(
    gcode_state: str,
    *,
    subtask: str | None = None,
    percent: int | None = None,
    error: int | None = None,
    online: bool = True,
) -> PrinterStatus:
    state = {
        "IDLE": "idle",
        "PREPARE": "printing",
        "RUNNING": "printing",
        "PAUSE": "paused",
        "FINISH": "finished",
        "FAILED": "error",
    }[gcode_state]
    return PrinterStatus(
        online=online,
        state=state if online else "offline",  # type: ignore[arg-type]
        gcode_state=gcode_state,
        subtask_name=subtask,
        progress_percent=percent,
        print_error=error,
        materials=PLA,
    )


def test_an_idle_printer_with_a_clear_bed_is_ready_and_remembers_since_when() -> None:
    p = printer()
    assert p.ready and p.idle_since == T0


def test_a_full_print_reports_started_progress_completed_and_leaves_the_bed_not_clear() -> None:
    p = printer()
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    assert not p.ready and p.current_job_id == "job-1" and p.idle_since is None
    steps = [
        status("PREPARE", subtask="job-1"),
        status("RUNNING", subtask="job-1", percent=50),
        status("FINISH", subtask="job-1", percent=100),
    ]
    outcomes = [o.status for s in steps for o in p.observe(s, T0 + timedelta(minutes=1))]
    assert outcomes[0] == "started" and outcomes[-1] == "completed" and "printing" in outcomes
    assert p.current_job_id is None and p.current_command_id is None
    assert not p.bed_clear and not p.ready
    p.clear_bed(T0 + timedelta(minutes=2))
    assert p.ready and p.idle_since == T0 + timedelta(minutes=2)


def test_fabmatic_clears_its_own_bed_after_a_good_print() -> None:
    p = printer(fabmatic=True)
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    p.observe(status("RUNNING", subtask="job-1", percent=10), T0)
    p.observe(status("FINISH", subtask="job-1", percent=100), T0)
    assert p.bed_clear and p.fabmatic


def test_fabmatic_switches_itself_off_when_the_print_fails() -> None:
    p = printer(fabmatic=True)
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    p.observe(status("RUNNING", subtask="job-1", percent=10), T0)
    outcomes = p.observe(status("FAILED", subtask="job-1", error=0x07008011), T0)
    assert [o.status for o in outcomes] == ["failed"]
    assert not p.fabmatic and not p.bed_clear and p.note and "FabMatic" in p.note


def test_fabmatic_switches_itself_off_when_the_connection_is_lost_mid_print() -> None:
    p = printer(fabmatic=True)
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    p.observe(status("RUNNING", subtask="job-1", percent=10), T0)
    assert p.observe(PrinterStatus.offline("connection lost"), T0) == []
    assert p.current_job_id == "job-1", "offline keeps the job printing until the printer says what happened"
    assert not p.fabmatic


def test_stop_reports_cancelled() -> None:
    p = printer()
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    p.observe(status("RUNNING", subtask="job-1", percent=10), T0)
    outcomes = p.observe(status("FAILED", subtask="job-1", error=0x0300400C), T0)
    assert [o.status for o in outcomes] == ["cancelled"]


@pytest.mark.parametrize("kind", ["stl", "scad", "3mf", "gcode"])
def test_a_bambu_printer_refuses_files_that_are_not_sliced_projects(kind: str) -> None:
    p = printer()
    with pytest.raises(UnprintableFile, match="cannot print"):
        p.dispatch("job-1", "cmd-1", kind, T0, timedelta(minutes=10))
    assert p.current_job_id is None


def test_no_dispatch_onto_a_bed_that_is_not_clear_or_a_busy_printer() -> None:
    p = printer()
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    with pytest.raises(PrinterError):
        p.dispatch("job-2", "cmd-2", "gcode.3mf", T0, timedelta(minutes=10))
    p.observe(status("FINISH", subtask="job-1"), T0)
    with pytest.raises(PrinterError, match="bed"):
        p.dispatch("job-2", "cmd-2", "gcode.3mf", T0, timedelta(minutes=10))


def test_a_dispatch_that_never_starts_times_out_as_not_started() -> None:
    p = printer()
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    assert p.check_deadline(T0 + timedelta(minutes=5)) == []
    outcomes = p.check_deadline(T0 + timedelta(minutes=11))
    assert [o.status for o in outcomes] == ["not_started"]
    assert p.ready and p.bed_clear


def test_a_failed_upload_frees_the_printer_without_touching_the_bed() -> None:
    p = printer()
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    p.dispatch_failed("job-1")
    assert p.ready and p.current_command_id is None


def test_bed_cannot_be_cleared_under_a_running_print() -> None:
    p = printer()
    p.dispatch("job-1", "cmd-1", "gcode.3mf", T0, timedelta(minutes=10))
    p.observe(status("RUNNING", subtask="job-1", percent=10), T0)
    with pytest.raises(PrinterError):
        p.clear_bed(T0)
