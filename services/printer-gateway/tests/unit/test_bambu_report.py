"""The report parser against captured reports of real printers, plus delta merging."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printer_gateway.adapters.bambu.report import (
    DEVELOPER_MODE_OFF_REASON,
    REPORT_COUNTERS,
    changes_nothing,
    merge_report,
    parse_status,
    print_object,
    report_fingerprint,
)
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus

FIXTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "bambu"
"""Captured reports of real printers, kept once for the whole repo (the simulator's tests read them too)."""


def load_print_object(name: str) -> dict[str, Any]:
    """Fixtures hold the `print` object under `pushall.print` or directly under `push_all`."""
    document = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    if "pushall" in document:
        report: dict[str, Any] = document["pushall"]["print"]
    else:
        report = document["push_all"]
    return report


def test_every_fixture_parses_to_a_known_state() -> None:
    names = sorted(path.name for path in FIXTURES.glob("*.json"))
    assert len(names) >= 5
    for name in names:
        status = parse_status(load_print_object(name))
        assert status.online
        assert status.state in {"idle", "printing", "paused", "finished", "error"}, name
        assert status.materials, name


def test_a1_idle_with_four_custom_pla_trays_and_external_spool() -> None:
    status = parse_status(load_print_object("MOCK-A1.json"))
    assert status.state == "idle"
    assert status.gcode_state == "IDLE"
    assert status.progress_percent == 0
    assert status.subtask_name is None
    assert status.gcode_file is None
    assert status.print_error is None and status.print_error_code is None
    assert status.hms_codes == ()
    assert status.tray_now is None
    assert status.error_reason is None
    assert status.materials == (
        LoadedMaterial(0, "PLA", "#76D9F4", "P8d19ba6", 100),
        LoadedMaterial(1, "PLA", "#FFF144", "P3a4d8cf", 100),
        LoadedMaterial(2, "PLA", "#FF80FF", "P8d19ba6", 100),
        LoadedMaterial(3, "PLA", "#0ACC38", "P3a4d8cf", 100),
        LoadedMaterial(254, "PLA", "#FFFFFF", "GFA00", None),
    )


def test_p1p_failed_print_with_unknown_remaining_filament() -> None:
    status = parse_status(load_print_object("P1P.json"))
    assert status.state == "error"
    assert status.gcode_state == "FAILED"
    assert status.error_reason == "print failed"
    assert status.subtask_name == "Fidget Collection"
    assert (status.layer, status.total_layers, status.remaining_minutes) == (1, 70, 759)
    assert status.tray_now == 0
    assert [m.slot for m in status.materials] == [0, 1, 2, 3, 254]
    assert all(m.remain_percent is None for m in status.materials)
    assert status.materials[0] == LoadedMaterial(0, "PLA", "#D357FE", "GFL96", None)
    assert status.materials[-1] == LoadedMaterial(254, "PLA", "#161616", "P9816594", None)


def test_running_printer_with_ams_ht_and_hms() -> None:
    status = parse_status(load_print_object("MOCK-MISC.json"))
    assert status.state == "printing"
    assert status.gcode_state == "RUNNING"
    assert (status.progress_percent, status.remaining_minutes) == (22, 163)
    assert (status.layer, status.total_layers) == (2, 37)
    assert status.prepare_percent == 100
    assert status.subtask_name == "CyberBrick Gridfinity Organizer Box"
    assert status.gcode_file == "/data/Metadata/plate_2.gcode"
    assert status.hms_codes == ("0C00_0300_0003_0007",)
    assert status.tray_now == 128
    assert status.materials == (
        LoadedMaterial(128, "PLA", "#F7D959", "GFA01", 65),
        LoadedMaterial(254, "PLA", "#FFFFFF", "GFL99", None),
    )


def test_p1p_without_ams_feeds_from_the_external_spool() -> None:
    status = parse_status(load_print_object("MOCK-P1PNOAMS.json"))
    assert status.state == "finished"
    assert status.progress_percent == 100
    assert (status.layer, status.total_layers) == (124, 124)
    assert status.subtask_name == "sensor_altanlås_v2_v3"
    assert status.tray_now == 254
    assert status.materials == (LoadedMaterial(254, "PETG", "#BCBCBC", "GFSNL08", None),)


def test_x1c_with_three_ams_an_empty_tray_and_an_ams_ht() -> None:
    status = parse_status(load_print_object("MOCK-X1CMULTIAMS.json"))
    assert status.state == "finished"
    assert status.subtask_name == "Garden Hose Healer: Male fitting"
    slots = {m.slot: m for m in status.materials}
    assert sorted(slots) == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 128]
    assert slots[0] == LoadedMaterial(0, "PLA", "#000000", "GFA01", 93)
    assert slots[3] == LoadedMaterial(3, "PLA", "#AE835B", "GFA01", 83)
    assert slots[4] == LoadedMaterial(4, "ABS", "#D32941", "GFB00", 21)
    assert slots[10] == LoadedMaterial(10, "ABS", "#789D4A", "GFB00", 62)
    assert slots[128] == LoadedMaterial(128, "PA-CF", "#000000", "GFN04", 100)
    assert 254 not in slots, "the empty external spool (vt_tray id 255) is omitted"
    assert status.tray_now is None


def test_external_spool_id_255_is_reported_as_254() -> None:
    report = {"gcode_state": "IDLE", "vt_tray": {"id": "255", "tray_type": "PETG", "tray_color": "112233FF"}}
    assert parse_status(report).materials == (LoadedMaterial(254, "PETG", "#112233", None, None),)


def test_print_error_is_shown_as_hex_halves_and_named_when_known() -> None:
    status = parse_status({"gcode_state": "FAILED", "print_error": 50348044})
    assert status.print_error == 0x0300400C
    assert status.print_error_code == "0300_400C"
    assert status.error_reason == "print error 0300_400C (task cancelled)"


def test_developer_mode_hms_is_a_configuration_error() -> None:
    report = {"gcode_state": "IDLE", "hms": [{"attr": 0x05000500, "code": 0x00010007}]}
    status = parse_status(report)
    assert status.state == "error"
    assert status.error_reason == DEVELOPER_MODE_OFF_REASON


def test_unknown_gcode_state_is_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    status = parse_status({"gcode_state": "CALIBRATING_LIDAR"})
    assert status.state == "error"
    assert status.gcode_state == "CALIBRATING_LIDAR"
    assert "CALIBRATING_LIDAR" in caplog.text


def test_paused_printer_carries_the_hms_reason() -> None:
    status = parse_status({"gcode_state": "PAUSE", "hms": [{"attr": 0x07002000, "code": 0x00020001}]})
    assert status.state == "paused"
    assert status.error_reason == "HMS 0700_2000_0002_0001"


def test_offline_flag_overrides_state() -> None:
    status = parse_status(load_print_object("MOCK-MISC.json"), online=False)
    assert status.state == "offline"
    assert not status.online
    assert PrinterStatus.offline("gone").error_reason == "gone"


def test_print_object_only_accepts_status_pushes() -> None:
    assert print_object({"print": {"command": "push_status", "mc_percent": 3}}) == {
        "command": "push_status",
        "mc_percent": 3,
    }
    assert print_object({"print": {"command": "project_file", "result": "success"}}) is None
    assert print_object({"info": {"command": "get_version"}}) is None


# --- delta merging (P1/A1 send only what changed) ---------------------------------------------


def test_p1_partial_updates_merge_into_the_cached_state() -> None:
    full = load_print_object("P1P.json")
    merged = merge_report(full, {"gcode_state": "RUNNING", "mc_percent": 7, "command": "push_status"})
    merged = merge_report(merged, {"ams": {"ams": [{"id": "0", "tray": [{"id": "2", "remain": 40}]}]}})
    merged = merge_report(merged, {"ams": {"tray_now": "2"}})
    status = parse_status(merged)
    assert status.state == "printing"
    assert status.progress_percent == 7
    assert status.subtask_name == "Fidget Collection"
    assert status.tray_now == 2
    assert status.material_in(2) == LoadedMaterial(2, "PLA", "#D357FE", "GFL96", 40)
    assert status.material_in(1) == LoadedMaterial(1, "PLA", "#D357FE", "GFL96", None)
    assert len(status.materials) == 5


def test_tray_swap_and_new_ams_unit_merge_by_id() -> None:
    full = load_print_object("MOCK-A1.json")
    delta = {
        "ams": {
            "ams": [
                {"id": "0", "tray": [{"id": "1", "tray_type": "PETG", "tray_color": "00FF00FF"}]},
                {"id": "1", "tray": [{"id": "0", "tray_type": "TPU", "tray_color": "000000FF"}]},
            ]
        }
    }
    status = parse_status(merge_report(full, delta))
    assert status.material_in(1) == LoadedMaterial(1, "PETG", "#00FF00", "P3a4d8cf", 100)
    assert status.material_in(4) == LoadedMaterial(4, "TPU", "#000000", None, None)
    assert status.material_in(0) == LoadedMaterial(0, "PLA", "#76D9F4", "P8d19ba6", 100)


def test_emptied_tray_disappears() -> None:
    full = load_print_object("MOCK-A1.json")
    merged = merge_report(full, {"ams": {"ams": [{"id": "0", "tray": [{"id": "3", "tray_type": ""}]}]}})
    assert [m.slot for m in parse_status(merged).materials] == [0, 1, 2, 254]


def test_merge_does_not_mutate_its_inputs() -> None:
    full = load_print_object("MOCK-X1CMULTIAMS.json")
    before = copy.deepcopy(full)
    delta = {"ams": {"ams": [{"id": "1", "tray": [{"id": "0", "remain": 5}]}]}, "hms": []}
    delta_before = copy.deepcopy(delta)
    merge_report(full, delta)
    assert full == before
    assert delta == delta_before


def test_other_lists_are_replaced_not_merged() -> None:
    merged = merge_report({"hms": [{"attr": 1, "code": 2}]}, {"hms": []})
    assert merged["hms"] == []


# --- properties -----------------------------------------------------------------------------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["0", "1", "128", "254", "255", "FFFFFFFF", "PLA", "RUNNING", "FAILED", "-1", "1e400"]),
)
json_like = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["id", "tray", "ams", "tray_type", "tray_color", "remain", "hms", "attr", "code", "x"]),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)
tray = st.fixed_dictionaries(
    {"id": st.sampled_from(["0", "1", "2", "3"])},
    optional={
        "tray_type": st.sampled_from(["", "PLA", "PETG"]),
        "tray_color": st.sampled_from(["FF0000FF", "00FF0080", "bogus"]),
        "remain": st.integers(-1, 100),
    },
)
ams_unit = st.fixed_dictionaries(
    {"id": st.sampled_from(["0", "1", "128"])}, optional={"tray": st.lists(tray, max_size=4), "humidity": st.text()}
)
report_strategy = st.fixed_dictionaries(
    {},
    optional={
        "gcode_state": st.sampled_from(["IDLE", "PREPARE", "RUNNING", "PAUSE", "FINISH", "FAILED", "WEIRD"]),
        "mc_percent": st.integers(-5, 120),
        "subtask_name": st.text(max_size=5),
        "print_error": st.integers(0, 2**32 - 1),
        "ams": st.fixed_dictionaries(
            {}, optional={"ams": st.lists(ams_unit, max_size=3), "tray_now": st.sampled_from(["0", "254", "255"])}
        ),
        "vt_tray": tray,
        "hms": st.lists(st.fixed_dictionaries({"attr": st.integers(0, 2**32), "code": st.integers(0, 2**32)})),
        "extra": json_like,
    },
)


@given(report_strategy)
def test_merging_an_empty_delta_is_identity(report: dict[str, Any]) -> None:
    assert merge_report(report, {}) == report


@given(report_strategy, report_strategy)
def test_merging_the_same_delta_twice_changes_nothing(cached: dict[str, Any], delta: dict[str, Any]) -> None:
    once = merge_report(cached, delta)
    assert merge_report(once, delta) == once


@given(report_strategy)
def test_a_full_report_into_an_empty_cache_is_the_report(report: dict[str, Any]) -> None:
    assert merge_report({}, report) == report


@settings(max_examples=300)
@given(st.one_of(json_like, report_strategy, st.dictionaries(st.text(max_size=12), json_like, max_size=6)))
def test_parser_never_raises(report: Any) -> None:
    status = parse_status(report if isinstance(report, dict) else {"gcode_state": report, "ams": report})
    assert status.state in {"offline", "idle", "printing", "paused", "finished", "error"}
    for material in status.materials:
        assert material.type
        assert material.color is None or (len(material.color) == 7 and material.color.startswith("#"))
        assert material.remain_percent is None or 0 < material.remain_percent <= 100


@given(report_strategy, report_strategy)
def test_parser_never_raises_on_merged_reports(cached: dict[str, Any], delta: dict[str, Any]) -> None:
    status = parse_status(merge_report(cached, delta))
    assert len({m.slot for m in status.materials}) == len(status.materials)


def _without_counters(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key not in REPORT_COUNTERS}


counters = st.fixed_dictionaries(
    {}, optional={"sequence_id": st.integers(0, 10**6).map(str), "msg": st.integers(0, 1), "command": st.just("x")}
)


@given(report_strategy, st.data(), counters)
def test_a_report_repeating_the_cache_changes_nothing(
    cached: dict[str, Any], data: st.DataObject, counted: dict[str, Any]
) -> None:
    """What the connection skips: a report carrying cached fields with equal values (and new counters)."""
    keys = data.draw(st.lists(st.sampled_from(sorted(cached)), unique=True) if cached else st.just([]))
    delta = {**copy.deepcopy({key: cached[key] for key in keys}), **counted}

    assert changes_nothing(cached, delta)
    assert _without_counters(merge_report(cached, delta)) == _without_counters(cached)
    assert parse_status(merge_report(cached, delta)) == parse_status(cached)


@given(report_strategy, report_strategy)
def test_whatever_changes_nothing_parses_as_the_cache(cached: dict[str, Any], delta: dict[str, Any]) -> None:
    if changes_nothing(cached, delta):
        assert parse_status(merge_report(cached, delta)) == parse_status(cached)
    else:
        assert any(key not in cached or cached[key] != delta[key] for key in _without_counters(delta))


def test_a_new_value_or_a_new_field_is_a_change() -> None:
    cached = load_print_object("P1P.json")
    assert changes_nothing(cached, {"sequence_id": "99", "command": "push_status", "msg": 1})
    assert not changes_nothing(cached, {"mc_percent": (cached.get("mc_percent") or 0) + 1})
    assert not changes_nothing(cached, {"never_seen_before": 1})
    assert not changes_nothing({}, {"gcode_state": "IDLE"})


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_report_fingerprint_ignores_sequence_ids_and_nothing_else(separators: tuple[str, str]) -> None:
    def payload(sequence_id: str, upload_id: str, percent: int) -> bytes:
        body = {"upload": {"sequence_id": upload_id}, "mc_percent": percent, "sequence_id": sequence_id}
        return json.dumps({"print": body}, separators=separators).encode()

    assert report_fingerprint(payload("1", "0903", 5)) == report_fingerprint(payload("12345", "7", 5))
    assert report_fingerprint(payload("1", "0903", 5)) != report_fingerprint(payload("1", "0903", 6))
    assert report_fingerprint(b"no ids here") == b"no ids here"
