"""Printers that print plain G-code: what they accept, where their materials come from, their secret, and
the statuses their drivers make of Moonraker, PrusaLink and OctoPrint messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printer_gateway.adapters.bambu.camera import frame_size, is_jpeg, login_packet
from printer_gateway.adapters.drivers import bambu_camera_kind
from printer_gateway.adapters.moonraker import status as moonraker
from printer_gateway.adapters.octoprint.status import OctoPrintView
from printer_gateway.adapters.prusalink import status as prusalink
from printer_gateway.domain.lifecycle import BedNoLongerClear, PrintCancelled, PrintTracker
from printer_gateway.domain.model import AccessCodeRequired, Printer, UnprintableFile
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ASA = (LoadedMaterial(0, "ASA", "#1E90FF", None, None),)


def klipper(**changes: Any) -> Printer:
    p = Printer(
        id="k1",
        name="voron",
        model="Voron 2.4",
        protocol="moonraker",
        host="10.0.0.7",
        port=7125,
        ftp_port=990,
        serial=None,
        tags=[],
        fabmatic=False,
        ca_cert=None,
        created_at=T0,
        updated_at=T0,
        tracker=PrintTracker(printer_id="k1", bed_clear=True),
    )
    for name, value in changes.items():
        setattr(p, name, value)
    p.observe(PrinterStatus(online=True, state="idle", gcode_state="IDLE"), T0)
    return p


def test_a_bambu_project_never_goes_to_a_gcode_printer_and_says_why() -> None:
    with pytest.raises(UnprintableFile, match=r"sliced for a Bambu printer.*Voron 2\.4 \(moonraker\)"):
        klipper().dispatch("j1", "c1", "gcode.3mf", T0, timedelta(minutes=5))


@pytest.mark.parametrize("kind", ["stl", "3mf", "scad"])
def test_an_unsliced_part_needs_slicing_for_a_gcode_printer(kind: str) -> None:
    with pytest.raises(UnprintableFile, match=f"cannot print a .{kind} file as it is: it needs .gcode"):
        klipper().dispatch("j1", "c1", kind, T0, timedelta(minutes=5))


def test_plain_gcode_goes_to_a_gcode_printer() -> None:
    p = klipper()
    p.dispatch("j1", "c1", "gcode", T0, timedelta(minutes=5))
    assert p.current_job_id == "j1"


def test_the_operators_materials_stand_in_until_the_printer_reports_its_own() -> None:
    p = klipper(operator_materials=ASA)
    assert p.materials == ASA
    spool = (LoadedMaterial(0, "PETG", "#000000", None, 80),)
    p.observe(PrinterStatus(online=True, state="idle", gcode_state="IDLE", materials=spool), T0)
    assert p.materials == spool
    assert p.snapshot()[7] == spool


def test_moving_a_printer_requires_its_api_key_not_an_access_code() -> None:
    with pytest.raises(AccessCodeRequired) as raised:
        klipper().require_access_code_for({"host": "10.0.0.8"}, access_code_given=False)
    assert raised.value.secret_field == "api_key" and raised.value.fields == ["host"]
    klipper().require_access_code_for({"host": "10.0.0.8"}, access_code_given=True)
    klipper().require_access_code_for({"name": "renamed"}, access_code_given=False)


def test_a_cancel_the_printer_reports_itself_cancels_the_job_and_leaves_the_bed_not_clear() -> None:
    tracker = PrintTracker("k1", bed_clear=True).dispatch("j1", T0, T0 + timedelta(minutes=5))
    running = PrinterStatus(online=True, state="printing", gcode_state="RUNNING", subtask_name="j1")
    cancelled = PrinterStatus(online=True, state="finished", gcode_state="CANCELLED", subtask_name="j1")
    tracker, _ = tracker.observe(running, T0)
    tracker, events = tracker.observe(cancelled, T0)
    assert [type(e) for e in events] == [PrintCancelled, BedNoLongerClear]
    assert tracker.job is None and not tracker.bed_clear


# Moonraker ----------------------------------------------------------------------------------------


def test_moonraker_deltas_merge_object_by_object() -> None:
    full = {"print_stats": {"state": "printing", "info": {"current_layer": 1, "total_layer": 9}}}
    merged = moonraker.merge_objects(
        full, {"print_stats": {"info": {"current_layer": 2}}, "webhooks": {"state": "ready"}}
    )
    assert merged == {
        "print_stats": {"state": "printing", "info": {"current_layer": 2, "total_layer": 9}},
        "webhooks": {"state": "ready"},
    }
    assert full["print_stats"]["info"] == {"current_layer": 1, "total_layer": 9}


def test_moonraker_printing_names_the_job_and_its_progress() -> None:
    objects = {
        "webhooks": {"state": "ready"},
        "print_stats": {
            "state": "printing",
            "filename": "sub/j1.gcode",
            "print_duration": 600.0,
            "info": {"current_layer": 3, "total_layer": 30},
        },
        "virtual_sdcard": {"progress": 0.25},
    }
    s = moonraker.parse_status(objects, ASA)
    assert (s.state, s.gcode_state, s.subtask_name, s.progress_percent) == ("printing", "RUNNING", "j1", 25)
    assert (s.remaining_minutes, s.layer, s.total_layers, s.materials) == (30, 3, 30, ASA)


@pytest.mark.parametrize(
    ("klippy", "print_state", "state", "gcode_state"),
    [
        ("ready", "complete", "finished", "FINISH"),
        ("ready", "cancelled", "finished", "CANCELLED"),
        ("ready", "error", "finished", "FAILED"),
        ("shutdown", "printing", "error", "FAILED"),
        ("shutdown", "standby", "error", None),
        ("error", "standby", "error", None),
        ("startup", "standby", "offline", None),
    ],
)
def test_klippy_and_print_states(klippy: str, print_state: str, state: str, gcode_state: str | None) -> None:
    s = moonraker.parse_status(
        {"webhooks": {"state": klippy, "state_message": "why"}, "print_stats": {"state": print_state}}
    )
    assert (s.state, s.gcode_state) == (state, gcode_state)
    assert s.online is (klippy != "startup")


def test_spoolman_spool_is_the_loaded_material() -> None:
    spool = {"remaining_weight": 250.0, "filament": {"material": "petg", "color_hex": "1e90ff", "weight": 1000}}
    assert moonraker.spool_material(spool) == (LoadedMaterial(0, "PETG", "#1E90FF", None, 25),)
    assert moonraker.spool_material({"filament": {"color_hex": "FFFFFF"}}) == ()


# PrusaLink ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("printer_state", "state", "gcode_state"),
    [
        ("IDLE", "idle", "IDLE"),
        ("PRINTING", "printing", "RUNNING"),
        ("PAUSED", "paused", "PAUSE"),
        ("ATTENTION", "paused", "PAUSE"),
        ("FINISHED", "finished", "FINISH"),
        ("STOPPED", "finished", "CANCELLED"),
        ("ERROR", "error", "FAILED"),
        ("BUSY", "printing", "PREPARE"),
    ],
)
def test_prusalink_states(printer_state: str, state: str, gcode_state: str) -> None:
    body = {"printer": {"state": printer_state}, "job": {"id": 4, "progress": 42.0, "time_remaining": 125}}
    s = prusalink.parse_status(body, "j1.gcode")
    assert (s.state, s.gcode_state, s.subtask_name) == (state, gcode_state, "j1")
    assert prusalink.job_id(body) == 4


def test_prusalink_says_why_it_needs_attention_or_failed() -> None:
    attention = {"printer": {"state": "ATTENTION", "status_printer": {"ok": False, "message": "filament runout"}}}
    assert prusalink.parse_status(attention, None).error_reason == "needs attention: filament runout"
    error = {"printer": {"state": "ERROR", "status_printer": {"message": "Thermal runaway"}}}
    assert prusalink.parse_status(error, None).error_reason == "Thermal runaway"
    assert prusalink.parse_status({"printer": {"state": "SOMETHING"}}, None).state == "error"


# OctoPrint ----------------------------------------------------------------------------------------


def current(text: str, completion: float | None = None, name: str | None = "j1.gcode") -> dict[str, Any]:
    return {
        "current": {"state": {"text": text}, "job": {"file": {"name": name}}, "progress": {"completion": completion}}
    }


def test_octoprint_learns_how_the_last_print_ended_from_its_events() -> None:
    view = OctoPrintView().fold(current("Printing", 40.0))
    status = view.status()
    assert status is not None and (status.gcode_state, status.progress_percent, status.subtask_name) == (
        "RUNNING",
        40,
        "j1",
    )
    view = view.fold({"event": {"type": "PrintCancelled", "payload": {"name": "j1.gcode"}}})
    view = view.fold({"event": {"type": "PrintFailed", "payload": {"name": "j1.gcode", "reason": "cancelled"}}})
    status = view.fold(current("Operational", 41.0)).status()
    assert status is not None and (status.state, status.gcode_state) == ("finished", "CANCELLED")
    view = view.fold({"event": {"type": "PrintStarted", "payload": {}}})
    status = view.fold(current("Operational", 0.0)).status()
    assert status is not None and status.gcode_state == "IDLE"


def test_octoprint_print_that_ended_unheard_counts_as_done_at_100_percent() -> None:
    status = OctoPrintView().fold(current("Operational", 100.0)).status()
    assert status is not None and status.gcode_state == "FINISH"
    status = OctoPrintView().fold(current("Offline")).status()
    assert status is not None and not status.online


# Never raise on what a printer sends --------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(
    st.sampled_from(["webhooks", "print_stats", "virtual_sdcard", "display_status", "printer", "job", "state", "x"]),
    json_values,
    max_size=6,
)


@given(objects, objects)
def test_no_printer_message_makes_a_parser_raise(first: dict[str, Any], second: dict[str, Any]) -> None:
    merged = moonraker.merge_objects(first, second)
    assert isinstance(moonraker.parse_status(merged), PrinterStatus)
    assert isinstance(prusalink.parse_status(first, "x.gcode"), PrinterStatus)
    view = OctoPrintView().fold({"current": first}).fold({"event": second})
    assert view.status() is None or isinstance(view.status(), PrinterStatus)


# Bambu cameras ------------------------------------------------------------------------------------


def test_camera_login_is_80_bytes_with_user_and_code_padded() -> None:
    packet = login_packet("12345678")
    assert len(packet) == 80
    assert packet[:8] == bytes.fromhex("4000000000300000") and packet[8:16] == bytes(8)
    assert packet[16:48] == b"bblp".ljust(32, b"\0") and packet[48:80] == b"12345678".ljust(32, b"\0")
    with pytest.raises(ValueError):
        login_packet("x" * 33)


def test_camera_frame_header_gives_the_jpeg_length() -> None:
    assert frame_size(bytes.fromhex("39300000000000000100000000000000")) == 12345
    for bad in (bytes(16), bytes.fromhex("ffffffff") + bytes(12), bytes(15)):
        with pytest.raises(ValueError):
            frame_size(bad)
    assert is_jpeg(b"\xff\xd8\xff\xe0 data \xff\xd9") and not is_jpeg(b"<html>")


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("P1S", "jpeg"),
        ("A1 mini", "jpeg"),
        ("Bambu Lab P1P", "jpeg"),
        ("X1C", "rtsps"),
        ("X1-Carbon", "rtsps"),
        ("H2D", "rtsps"),
        ("Voron 2.4", None),
    ],
)
def test_which_camera_a_bambu_model_has(model: str, kind: str | None) -> None:
    assert bambu_camera_kind(model) == kind
