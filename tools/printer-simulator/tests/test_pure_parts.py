"""Pure parts of the simulator: fleet parsing, project inspection, report deltas, MQTT framing, the RTSPS
camera's clip and RTP packets."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from printer_simulator import report as report_module
from printer_simulator.catalog import default_fleet, model_profile, parse_fleet, parse_printer
from printer_simulator.lifecycle import Job, PrintLifecycle
from printer_simulator.mqtt import MqttProtocolError, decode_length, encode_length, topic_matches
from printer_simulator.project import (
    JobRefused,
    build_project,
    check_printer_type,
    gcode_model_check,
    inspect_gcode,
    inspect_project,
    parse_duration,
)
from printer_simulator.report import StatusReports, materials_fields, report_delta
from printer_simulator.rtsps import MAX_RTP_PAYLOAD, access_units, camera_clip, rtp_payloads


def test_default_fleet_mixes_brands_and_materials_unique_to_one_printer() -> None:
    fleet = default_fleet()
    assert [(p.model, p.protocol) for p in fleet] == [
        ("X1C", "bambu_lan"),
        ("P1S", "bambu_lan"),
        ("P1P", "bambu_lan"),
        ("A1", "bambu_lan"),
        ("Voron 2.4", "moonraker"),
        ("Prusa MK4", "prusalink"),
    ]
    assert [p.full_reports for p in fleet[:4]] == [True, False, False, False]
    assert [p.spoolman for p in fleet] == [False, False, False, False, True, False]
    assert all(p.api_key for p in fleet if p.protocol == "prusalink")
    holders: dict[str, set[str]] = {}
    for printer in fleet:
        for material in printer.materials:
            holders.setdefault(material.type, set()).add(printer.serial)
    assert sum(1 for serials in holders.values() if len(serials) == 1) >= 4
    assert len(holders["ASA"]) == len(holders["PC"]) == 1
    assert [p.tags for p in fleet if p.tags] == [("big",)]
    assert [p.fabmatic for p in fleet].count(True) == 1


def test_parse_printer_normalises_and_passes_unknown_keys_through() -> None:
    spec = parse_printer(
        {
            "serial": "S1",
            "model": "a1 mini",
            "materials": [{"slot": 254, "type": "pla", "color": "#00ae42"}],
            "shelf": "B2",
        }
    )
    assert spec.profile.code == "A1M" and not spec.full_reports
    assert len(spec.access_code) == 8 and spec.access_code.isdigit()
    material = spec.materials[0]
    assert (material.type, material.color, material.profile, material.remain_percent) == (
        "PLA",
        "00AE42FF",
        "GFL99",
        100,
    )
    assert spec.passthrough == {"shelf": "B2"}
    assert parse_printer({"serial": "S2", "model": "P1P", "report_mode": "full"}).full_reports
    assert model_profile("H2D").full_reports is False


@pytest.mark.parametrize(
    "entry",
    [
        {"serial": "a/b"},
        {"serial": "S", "materials": [{"slot": 17, "type": "PLA"}]},
        {"serial": "S", "materials": [{"slot": 0, "type": "PLA", "color": "red"}]},
        {"serial": "S", "materials": [{"slot": 0, "type": "PLA"}, {"slot": 0, "type": "PETG"}]},
        {"serial": "S", "vt_tray_id": 253},
    ],
)
def test_bad_fleet_entries_are_rejected(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_printer(entry)


def test_duplicate_serials_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        parse_fleet([{"serial": "S"}, {"serial": "S"}])


def test_parse_duration() -> None:
    assert parse_duration("30m 0s") == 1800
    assert parse_duration("1d 2h 3m 4s") == 93784
    assert parse_duration("soon") is None


def test_inspect_project_prefers_slice_info_then_the_gcode_header() -> None:
    plate = inspect_project("a.gcode.3mf", build_project(print_seconds=5400, layers=12), "Metadata/plate_1.gcode")
    assert (plate.print_seconds, plate.total_layers) == (5400, 12)
    header_only = build_project(print_seconds=3723, layers=7, plate=3, with_slice_info=False)
    plate = inspect_project("b.gcode.3mf", header_only, "Metadata/plate_3.gcode")
    assert (plate.print_seconds, plate.total_layers) == (3723, 7)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Metadata/plate_1.gcode", "; model printing time: 30m 0s\nG28\n")
    plate = inspect_project("c.gcode.3mf", buffer.getvalue(), "Metadata/plate_1.gcode")
    assert (plate.print_seconds, plate.total_layers) == (1800, 100)


def test_inspect_project_refusals_carry_a_print_error() -> None:
    with pytest.raises(JobRefused) as missing:
        inspect_project("x.gcode.3mf", None, "Metadata/plate_1.gcode")
    with pytest.raises(JobRefused) as wrong_plate:
        inspect_project("x.gcode.3mf", build_project(plate=1), "Metadata/plate_2.gcode")
    assert (missing.value.print_error, wrong_plate.value.print_error) == (0x05004002, 0x05004003)


def test_plain_gcode_is_read_and_what_a_gcode_printer_cannot_print_is_refused() -> None:
    prusaslicer = (
        b"; generated by PrusaSlicer 2.5.0\nM862.3 P \"MK4\" ; printer model check\nG28\n"
        + b";LAYER_CHANGE\n;Z:0.2\nG1 Z.2\n" * 15
        + b"; estimated printing time (normal mode) = 4m 4s\n"
    )
    plate = inspect_gcode("job.gcode", prusaslicer)
    assert (plate.print_seconds, plate.total_layers) == (244, 15), "PrusaSlicer's trailer and its layer changes"
    for name, data in (("job.gcode.3mf", build_project()), ("part.stl", b"solid x"), ("gone.gcode", None)):
        with pytest.raises(JobRefused):
            inspect_gcode(name, data)


@pytest.mark.parametrize(
    ("model", "gcode", "refused"),
    [
        ("Prusa MK4", b'M862.3 P "MK4"', False),
        ("Original Prusa MK4", b'M862.3 P "MK4IS"', False),
        ("Prusa MINI+", b'M862.3 P "MINI"', False),
        ("Prusa MK4", b"G28 ; no model check: other slicers' G-code", False),
        ("Prusa MK4", b'M862.3 P "MK3S"', True),
        ("Prusa XL", b'M862.3 P "MK4"', True),
        ("Prusa MINI", b'M862.3 P "XL"', True),
    ],
)
def test_a_prusa_printer_refuses_gcode_sliced_for_another_printer_type(model: str, gcode: bytes, refused: bool) -> None:
    data = b"; generated by PrusaSlicer 2.5.0\n" + gcode + b"\nG28\n"
    if refused:
        with pytest.raises(JobRefused, match="sliced for a different printer type"):
            check_printer_type("job.gcode", data, model)
    else:
        check_printer_type("job.gcode", data, model)
    assert gcode_model_check(b"G28\n") is None and gcode_model_check(data) == (gcode.split(b'"')[1].decode()
                                                                                if b'"' in gcode else None)


def test_report_delta_keeps_changed_fields_and_list_elements_by_id() -> None:
    old = {
        "command": "push_status",
        "sequence_id": "1",
        "mc_percent": 10,
        "gcode_state": "RUNNING",
        "hms": [],
        "ams": {"tray_now": "0", "ams": [{"id": "0", "tray": [{"id": "0", "remain": 50}, {"id": "1", "remain": 9}]}]},
    }
    new = {
        **old,
        "sequence_id": "2",
        "mc_percent": 11,
        "hms": [{"attr": 1, "code": 2}],
        "ams": {"tray_now": "0", "ams": [{"id": "0", "tray": [{"id": "0", "remain": 49}, {"id": "1", "remain": 9}]}]},
    }
    assert report_delta(old, new) == {
        "mc_percent": 11,
        "hms": [{"attr": 1, "code": 2}],
        "ams": {"ams": [{"id": "0", "tray": [{"id": "0", "remain": 49}]}]},
    }
    assert report_delta(new, new) == {}
    units = [{"id": "0", "tray": [{"id": "0", "remain": 49}]}, {"id": "1", "tray": []}]
    grown = {**new, "ams": {"tray_now": "0", "ams": units}}
    assert report_delta(new, grown) == {"ams": {"ams": units}}


def test_materials_fields_map_global_slots_to_ams_units_and_the_external_spool() -> None:
    spec = parse_printer(
        {
            "serial": "S",
            "materials": [
                {"slot": 5, "type": "PETG", "color": "#C12E1F"},
                {"slot": 128, "type": "PA", "color": "#000000"},
                {"slot": 254, "type": "TPU", "color": "#FFFFFF"},
            ],
        }
    )
    fields = materials_fields(spec.materials, ams_units=0, vt_tray_id=255, tray_now=254)
    units = fields["ams"]["ams"]
    assert [u["id"] for u in units] == ["1", "128"]
    assert [t["tray_type"] for t in units[0]["tray"]] == ["", "PETG", "", ""]
    assert units[1]["tray"][0]["tray_type"] == "PA"
    assert fields["ams"]["ams_exist_bits"] == "2" and fields["ams"]["tray_exist_bits"] == "20"
    assert fields["vt_tray"]["id"] == "255" and fields["vt_tray"]["tray_type"] == "TPU"
    assert fields["ams"]["tray_now"] == "254"


def test_mqtt_framing() -> None:
    for n in (0, 127, 128, 16383, 16384, 268_435_455):
        encoded = encode_length(n)
        assert decode_length(b"\x30" + encoded, 1) == (n, 1 + len(encoded))
    assert decode_length(b"\x30\x80", 1) is None
    with pytest.raises(MqttProtocolError):
        decode_length(b"\x30\xff\xff\xff\xff\x01", 1)
    assert topic_matches("device/+/report", "device/S/report")
    assert topic_matches("#", "device/S/report")
    assert topic_matches("device/S/#", "device/S/report")
    assert not topic_matches("device/S/request", "device/S/report")
    assert not topic_matches("device/+", "device/S/report")


def test_the_camera_clip_is_whole_frames_each_loop_starting_with_a_key_frame() -> None:
    frames = access_units(camera_clip())
    assert len(frames) == 10, "2 s at 5 frames per second"
    kinds = [[unit[0] & 0x1F for unit in frame] for frame in frames]
    assert kinds[0][:2] == [7, 8] and kinds[0][-1] == 5, "SPS, PPS, ..., IDR first"
    assert all(frame[-1] in (1, 5) for frame in kinds), "each frame ends with its one slice"


def test_large_nal_units_go_as_fu_a_fragments_that_fit_a_packet() -> None:
    unit = bytes([0x65]) + bytes(range(256)) * 20
    payloads = rtp_payloads(unit)
    assert len(payloads) > 1 and all(len(p) <= MAX_RTP_PAYLOAD for p in payloads)
    assert all(p[0] == (0x65 & 0xE0) | 28 for p in payloads)
    assert payloads[0][1] == 0x80 | 5 and payloads[-1][1] == 0x40 | 5
    assert b"".join(p[2:] for p in payloads) == unit[1:]
    assert rtp_payloads(b"\x41small") == [b"\x41small"]


@pytest.mark.parametrize("model", ["X1C", "P1S"])
def test_reports_reuse_their_encoding_yet_are_the_bytes_encoding_each_would_give(model: str) -> None:
    """Full reports (X1C) and deltas (P1S) through idle, a print's progress and its end: every payload is
    exactly the compact JSON of that report with its own sequence id last."""
    spec = parse_printer({"serial": f"S{model}", "model": model, "access_code": "12345678"})
    lifecycle = PrintLifecycle(spec.serial, spec.materials, lambda: (0, []))
    reports = StatusReports(spec, lifecycle)
    job = Job("a.gcode.3mf", "ftp:///a", "Metadata/plate_1.gcode", "job", [0], True, 600.0, 50, None)
    previous: dict[str, Any] | None = None
    payloads = []
    for second in range(40):
        if second == 10:
            lifecycle.start(job, second, prepare_seconds=3, run_seconds=20, hms_at=None)
        lifecycle.advance(second)
        full = reports.current(second)
        payload = reports.next_payload(second)
        del full["sequence_id"]
        if spec.full_reports or previous is None:
            body = dict(full)
        else:
            body = {"command": "push_status", **report_delta(previous, full), "msg": 1}
        body["sequence_id"] = str(second + 1)
        assert payload == json.dumps({"print": body}, separators=(",", ":")).encode()
        previous = full
        payloads.append(payload)
    assert b'"gcode_state":"FINISH"' in b"".join(payloads) and reports.sent == 40


def test_an_idle_printer_s_reports_are_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_printer({"serial": "SX1C", "model": "X1C", "access_code": "12345678"})
    reports = StatusReports(spec, PrintLifecycle(spec.serial, spec.materials, lambda: (0, [])))
    encoded: list[object] = []
    dumps = report_module.json.dumps

    def counting(obj: Any, **kwargs: Any) -> str:
        encoded.append(obj)
        return dumps(obj, **kwargs)

    monkeypatch.setattr(report_module.json, "dumps", counting)
    payloads = [reports.next_payload(float(second)) for second in range(5)]
    assert len(encoded) == 1
    assert [json.loads(p)["print"]["sequence_id"] for p in payloads] == ["1", "2", "3", "4", "5"]
