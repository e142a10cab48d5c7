"""Bambu LAN MQTT messages: topics, command builders, reply parsing and the `ams_mapping` choice."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.colours import canonical_color
from printer_gateway.adapters.bambu.report import DEVELOPER_MODE_OFF_REASON
from printer_gateway.adapters.driver import MaterialRequirement as MaterialRequirement
from printer_gateway.domain.printer_status import EXTERNAL_SPOOL_SLOT, LoadedMaterial

JsonObject = dict[str, Any]

FTP_URL_TEMPLATE = "ftp:///{file}"
SDCARD_URL_TEMPLATE = "file:///sdcard/{file}"
"""`project_file.url` forms seen in the wild; which one a model wants is a per-printer setting."""

UNMAPPED = -1
_VERIFY_FAILED = "mqtt message verify failed"
_MESSAGE_TYPES = ("print", "pushing", "info", "system", "upgrade", "xcam")


def report_topic(serial: str) -> str:
    return f"device/{serial}/report"


def request_topic(serial: str) -> str:
    return f"device/{serial}/request"


class SequenceIds:
    """Client-chosen `sequence_id`s, echoed in replies so they can be matched to the request."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def next(self) -> str:
        return str(next(self._counter))


def pushall(sequence_id: str) -> JsonObject:
    return {"pushing": {"sequence_id": sequence_id, "command": "pushall", "version": 1, "push_target": 1}}


def get_version(sequence_id: str) -> JsonObject:
    return {"info": {"sequence_id": sequence_id, "command": "get_version"}}


def get_accessories(sequence_id: str) -> JsonObject:
    """A read-only `print` command: answered like any control command, so it shows whether the
    printer accepts control (developer mode) without changing anything."""
    return {"print": {"sequence_id": sequence_id, "command": "get_accessories", "accessory_type": "none"}}


def pause(sequence_id: str) -> JsonObject:
    return _print_control("pause", sequence_id)


def resume(sequence_id: str) -> JsonObject:
    return _print_control("resume", sequence_id)


def stop(sequence_id: str) -> JsonObject:
    return _print_control("stop", sequence_id)


def _print_control(command: str, sequence_id: str) -> JsonObject:
    return {"print": {"sequence_id": sequence_id, "command": command, "param": ""}}


def plate_gcode_path(plate: str | int) -> str:
    """Accept a plate number ("2") or the gcode path inside the 3MF ("Metadata/plate_2.gcode")."""
    text = str(plate).strip()
    if text.isdigit():
        return f"Metadata/plate_{int(text)}.gcode"
    if not text:
        raise ValueError("plate must be a plate number or a Metadata/plate_N.gcode path")
    return text


def project_file(
    sequence_id: str,
    *,
    file_name: str,
    plate: str | int,
    subtask_name: str,
    ams_mapping: Sequence[int],
    url_template: str = FTP_URL_TEMPLATE,
    bed_leveling: bool = True,
    timelapse: bool = False,
) -> JsonObject:
    """Start a print of an uploaded `.gcode.3mf`; `subtask_name` is how reports identify the job."""
    if "{file}" not in url_template:
        raise ValueError("url_template must contain {file}")
    mapping = [int(slot) for slot in ams_mapping]
    return {
        "print": {
            "sequence_id": sequence_id,
            "command": "project_file",
            "param": plate_gcode_path(plate),
            "url": url_template.format(file=file_name),
            "file": file_name,
            "subtask_name": subtask_name,
            "md5": "",
            "bed_type": "auto",
            "timelapse": timelapse,
            "bed_leveling": bed_leveling,
            "flow_cali": False,
            "vibration_cali": False,
            "layer_inspect": False,
            "use_ams": any(0 <= slot < EXTERNAL_SPOOL_SLOT for slot in mapping),
            "ams_mapping": mapping,
            "project_id": "0",
            "profile_id": "0",
            "task_id": "0",
            "subtask_id": "0",
        }
    }


@dataclass(frozen=True)
class CommandReply:
    """The printer's answer to one of our commands, matched by `sequence_id`."""

    message_type: str
    command: str | None
    sequence_id: str
    result: str | None
    reason: str | None

    @property
    def ok(self) -> bool:
        """Replies without `result` (some `get_version` answers) count as success."""
        return self.result is None or self.result.lower() == "success"

    @property
    def developer_mode_off(self) -> bool:
        return not self.ok and _VERIFY_FAILED in (self.reason or "").lower()

    @property
    def failure_reason(self) -> str:
        if self.developer_mode_off:
            return DEVELOPER_MODE_OFF_REASON
        return self.reason or "the printer rejected the command"


def parse_reply(message: Mapping[str, Any]) -> CommandReply | None:
    """A command reply on the report topic; status pushes are not replies."""
    for message_type in _MESSAGE_TYPES:
        body = message.get(message_type)
        if not isinstance(body, Mapping):
            continue
        command = body.get("command")
        if command == "push_status":
            return None
        sequence_id = body.get("sequence_id")
        if isinstance(sequence_id, bool) or not isinstance(sequence_id, str | int):
            return None
        result, reason = body.get("result"), body.get("reason")
        return CommandReply(
            message_type=message_type,
            command=command if isinstance(command, str) else None,
            sequence_id=str(sequence_id),
            result=result if isinstance(result, str) else None,
            reason=reason if isinstance(reason, str) and reason else None,
        )
    return None


class NoMatchingTray(Exception):
    """The printer has no loaded spool that satisfies a filament of the job."""

    def __init__(self, requirement: MaterialRequirement) -> None:
        super().__init__(f"no loaded tray matches {requirement}")
        self.requirement = requirement


def tray_matches(requirement: MaterialRequirement, material: LoadedMaterial) -> bool:
    """Type always; colour as RGB when the job names one, unless the queue named this slot as serving it
    (within the farm's colour tolerance); profile only where both sides have one."""
    if requirement.type.strip().upper() != material.type.strip().upper():
        return False
    if material.slot in requirement.slots:
        return True
    wanted_color = canonical_color(requirement.color) if requirement.color else None
    if requirement.color and wanted_color is None:
        return False
    if wanted_color is not None and wanted_color != material.color:
        return False
    return not (requirement.profile and material.profile and requirement.profile != material.profile)


def choose_tray(
    requirement: MaterialRequirement, loaded: Sequence[LoadedMaterial], tray_now: int | None = None
) -> int | None:
    """Prefer the tray already feeding (no filament change), then the fullest, then the lowest slot."""
    candidates = [material for material in loaded if tray_matches(requirement, material)]
    if not candidates:
        return None
    best = min(
        candidates,
        key=lambda m: (m.slot != tray_now, -(m.remain_percent if m.remain_percent is not None else -1), m.slot),
    )
    return best.slot


def build_ams_mapping(
    requirements: Sequence[MaterialRequirement],
    loaded: Sequence[LoadedMaterial],
    tray_now: int | None = None,
) -> list[int]:
    """`ams_mapping[i]` = global tray id for the slicer's filament i; raises if any has no match."""
    mapping: list[int] = []
    for requirement in requirements:
        slot = choose_tray(requirement, loaded, tray_now)
        if slot is None:
            raise NoMatchingTray(requirement)
        mapping.append(slot)
    return mapping
