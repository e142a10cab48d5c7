"""Command builders, reply parsing and the choice of `ams_mapping` trays."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printer_gateway.adapters.bambu import protocol
from printer_gateway.adapters.bambu.protocol import (
    MaterialRequirement,
    NoMatchingTray,
    build_ams_mapping,
    choose_tray,
    parse_reply,
)
from printer_gateway.adapters.bambu.report import DEVELOPER_MODE_OFF_REASON
from printer_gateway.domain.printer_status import LoadedMaterial


def test_topics() -> None:
    assert protocol.report_topic("01S00C") == "device/01S00C/report"
    assert protocol.request_topic("01S00C") == "device/01S00C/request"


def test_sequence_ids_are_increasing_strings() -> None:
    ids = protocol.SequenceIds(start=7)
    assert [ids.next(), ids.next(), ids.next()] == ["7", "8", "9"]


def test_pushall_and_get_version() -> None:
    assert protocol.pushall("3") == {
        "pushing": {"sequence_id": "3", "command": "pushall", "version": 1, "push_target": 1}
    }
    assert protocol.get_version("4") == {"info": {"sequence_id": "4", "command": "get_version"}}


@pytest.mark.parametrize(
    "builder,command", [(protocol.pause, "pause"), (protocol.resume, "resume"), (protocol.stop, "stop")]
)
def test_print_controls(builder: object, command: str) -> None:
    assert callable(builder)
    assert builder("12") == {"print": {"sequence_id": "12", "command": command, "param": ""}}


def test_project_file_with_ams() -> None:
    message = protocol.project_file(
        "21", file_name="job-1.gcode.3mf", plate="2", subtask_name="job-1", ams_mapping=[2, -1]
    )
    body = message["print"]
    assert body["command"] == "project_file"
    assert body["sequence_id"] == "21"
    assert body["param"] == "Metadata/plate_2.gcode"
    assert body["url"] == "ftp:///job-1.gcode.3mf"
    assert body["file"] == "job-1.gcode.3mf"
    assert body["subtask_name"] == "job-1"
    assert body["ams_mapping"] == [2, -1]
    assert body["use_ams"] is True
    assert body["bed_leveling"] is True and body["timelapse"] is False
    assert body["md5"] == "" and body["project_id"] == "0" and body["task_id"] == "0"
    json.dumps(message)


def test_project_file_from_external_spool_and_sdcard_url() -> None:
    body = protocol.project_file(
        "1",
        file_name="a.gcode.3mf",
        plate="Metadata/plate_1.gcode",
        subtask_name="j",
        ams_mapping=[254],
        url_template=protocol.SDCARD_URL_TEMPLATE,
    )["print"]
    assert body["url"] == "file:///sdcard/a.gcode.3mf"
    assert body["param"] == "Metadata/plate_1.gcode"
    assert body["use_ams"] is False


def test_project_file_rejects_a_template_without_file() -> None:
    with pytest.raises(ValueError):
        protocol.project_file("1", file_name="a", plate="1", subtask_name="j", ams_mapping=[], url_template="x")


def test_reply_success_and_failure() -> None:
    ok = parse_reply({"print": {"command": "project_file", "sequence_id": "5", "result": "success", "reason": ""}})
    assert ok is not None and ok.ok and ok.sequence_id == "5" and ok.command == "project_file"
    assert ok.reason is None
    failed = parse_reply({"print": {"command": "stop", "sequence_id": 6, "result": "failed", "reason": "busy"}})
    assert failed is not None and not failed.ok and failed.sequence_id == "6"
    assert failed.failure_reason == "busy"
    assert not failed.developer_mode_off


def test_mqtt_message_verify_failed_means_developer_mode_off() -> None:
    reply = parse_reply(
        {"print": {"command": "pause", "sequence_id": "9", "result": "failed", "reason": "mqtt message verify failed"}}
    )
    assert reply is not None and reply.developer_mode_off
    assert reply.failure_reason == DEVELOPER_MODE_OFF_REASON


def test_get_version_reply_without_result_counts_as_success() -> None:
    reply = parse_reply({"info": {"command": "get_version", "sequence_id": "0", "module": []}})
    assert reply is not None and reply.ok and reply.message_type == "info"


def test_status_pushes_and_junk_are_not_replies() -> None:
    assert parse_reply({"print": {"command": "push_status", "sequence_id": "100", "mc_percent": 5}}) is None
    assert parse_reply({"print": {"command": "stop"}}) is None
    assert parse_reply({"something": 1}) is None


# --- ams_mapping ------------------------------------------------------------------------------

LOADED = (
    LoadedMaterial(0, "PLA", "#000000", "GFA01", 93),
    LoadedMaterial(1, "PLA", "#FFFFFF", "GFA00", 20),
    LoadedMaterial(2, "PLA", "#FFFFFF", "GFA00", 80),
    LoadedMaterial(5, "PETG", "#FF0000", None, None),
    LoadedMaterial(128, "PA-CF", "#000000", "GFN04", 100),
    LoadedMaterial(254, "TPU", "#00FF00", "GFU01", None),
)


def test_type_and_colour_pick_the_fullest_matching_tray() -> None:
    assert choose_tray(MaterialRequirement("PLA", "#ffffff"), LOADED) == 2


def test_colour_alpha_and_hash_are_ignored() -> None:
    assert choose_tray(MaterialRequirement("pla", "000000FF"), LOADED) == 0


def test_active_tray_is_preferred_over_a_fuller_one() -> None:
    assert choose_tray(MaterialRequirement("PLA", "#FFFFFF"), LOADED, tray_now=1) == 1


def test_profile_separates_matte_from_basic_only_where_both_have_one() -> None:
    assert choose_tray(MaterialRequirement("PLA", "#000000", "GFA00"), LOADED) is None
    assert choose_tray(MaterialRequirement("PLA", "#000000", "GFA01"), LOADED) == 0
    assert choose_tray(MaterialRequirement("PETG", "#FF0000", "GFG99"), LOADED) == 5


def test_a_slot_the_queue_judged_close_enough_serves_a_near_colour_but_never_another_type() -> None:
    """Within the farm's colour tolerance the queue names the slots that serve the job: an #F01010 job
    feeds from the #FF0000 PETG spool it chose, not refused for want of the exact colour."""
    assert choose_tray(MaterialRequirement("PETG", "#F01010"), LOADED) is None
    assert choose_tray(MaterialRequirement("PETG", "#F01010", slots=(5,)), LOADED) == 5
    assert choose_tray(MaterialRequirement("PLA", "#F01010", slots=(5,)), LOADED) is None


def test_external_spool_and_ams_ht_are_candidates() -> None:
    assert choose_tray(MaterialRequirement("TPU"), LOADED) == 254
    assert choose_tray(MaterialRequirement("PA-CF", "#000000"), LOADED) == 128


def test_build_mapping_for_a_multi_colour_job() -> None:
    wanted = [MaterialRequirement("PLA", "#000000"), MaterialRequirement("PETG", "#FF0000")]
    assert build_ams_mapping(wanted, LOADED) == [0, 5]


def test_build_mapping_raises_when_a_filament_is_missing() -> None:
    with pytest.raises(NoMatchingTray) as raised:
        build_ams_mapping([MaterialRequirement("PLA", "#000000"), MaterialRequirement("ABS")], LOADED)
    assert raised.value.requirement == MaterialRequirement("ABS")


def test_invalid_requested_colour_matches_nothing() -> None:
    assert choose_tray(MaterialRequirement("PLA", "black"), LOADED) is None


materials = st.lists(
    st.builds(
        LoadedMaterial,
        slot=st.sampled_from([0, 1, 2, 3, 4, 7, 128, 254]),
        type=st.sampled_from(["PLA", "PETG"]),
        color=st.sampled_from([None, "#000000", "#FFFFFF"]),
        profile=st.sampled_from([None, "GFA00", "GFA01"]),
        remain_percent=st.one_of(st.none(), st.integers(1, 100)),
    ),
    max_size=8,
)
requirements = st.builds(
    MaterialRequirement,
    type=st.sampled_from(["PLA", "PETG", "ABS"]),
    color=st.sampled_from([None, "#000000", "FFFFFFFF"]),
    profile=st.sampled_from([None, "GFA00", "GFA01"]),
)


@given(requirements, materials, st.sampled_from([None, 0, 128, 254]))
def test_chosen_tray_is_loaded_and_matches(
    requirement: MaterialRequirement, loaded: list[LoadedMaterial], tray_now: int | None
) -> None:
    slot = choose_tray(requirement, loaded, tray_now)
    matching = [m for m in loaded if protocol.tray_matches(requirement, m)]
    if slot is None:
        assert not matching
    else:
        assert any(m.slot == slot for m in matching)
