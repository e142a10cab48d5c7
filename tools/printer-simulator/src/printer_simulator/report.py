"""The shape of ``push_status`` reports and ``get_version`` replies, P1-style deltas between reports, and the
stream of reports one printer sends (sequence ids, a full report first, deltas after).

Field names and value types follow the captured reports of real printers in the repository's
``tests/fixtures/bambu``; the simulator's tests compare against them.
"""

from __future__ import annotations

import json
from typing import Any

from printer_simulator.catalog import EXTERNAL_SLOT, MaterialSpec, ModelProfile, PrinterSpec, material_temperatures
from printer_simulator.lifecycle import ACTIVE_STATES, PREPARE, RUNNING, PrintLifecycle

_VOLATILE = ("command", "msg", "sequence_id")
_AMBIENT = 25.0


def _tray_fields(tray_id: str, material: MaterialSpec | None) -> dict[str, Any]:
    if material is None:
        return {
            "id": tray_id,
            "remain": 0,
            "k": 0.02,
            "n": 1,
            "cali_idx": -1,
            "tag_uid": "0000000000000000",
            "tray_id_name": "",
            "tray_info_idx": "",
            "tray_type": "",
            "tray_sub_brands": "",
            "tray_color": "00000000",
            "tray_weight": "0",
            "tray_diameter": "0.00",
            "tray_temp": "0",
            "tray_time": "0",
            "bed_temp_type": "0",
            "bed_temp": "0",
            "nozzle_temp_max": "0",
            "nozzle_temp_min": "0",
            "xcam_info": "000000000000000000000000",
            "tray_uuid": "00000000000000000000000000000000",
            "ctype": 0,
            "cols": ["00000000"],
        }
    temp_min, temp_max, _, bed = material_temperatures(material.type)
    return {
        "id": tray_id,
        "remain": material.remain_percent,
        "k": 0.02,
        "n": 1,
        "cali_idx": -1,
        "tag_uid": "0000000000000000",
        "tray_id_name": "",
        "tray_info_idx": material.profile,
        "tray_type": material.type,
        "tray_sub_brands": material.sub_brand,
        "tray_color": material.color,
        "tray_weight": "1000",
        "tray_diameter": "1.75",
        "tray_temp": "0",
        "tray_time": "0",
        "bed_temp_type": "0",
        "bed_temp": str(bed),
        "nozzle_temp_max": str(temp_max),
        "nozzle_temp_min": str(temp_min),
        "xcam_info": "000000000000000000000000",
        "tray_uuid": "00000000000000000000000000000000",
        "ctype": 0,
        "cols": [material.color],
    }


def ams_unit_ids(materials: tuple[MaterialSpec, ...], ams_units: int) -> list[int]:
    units = set(range(ams_units))
    for m in materials:
        if m.slot < 16:
            units.add(m.slot // 4)
        elif 128 <= m.slot < 136:
            units.add(m.slot)
    return sorted(units)


def materials_fields(
    materials: tuple[MaterialSpec, ...], *, ams_units: int, vt_tray_id: int, tray_now: int
) -> dict[str, Any]:
    """``ams`` and ``vt_tray`` report fields; rebuilt only when materials or the active tray change."""
    by_slot = {m.slot: m for m in materials}
    units: list[dict[str, Any]] = []
    exist_bits = tray_bits = 0
    for unit in ams_unit_ids(materials, ams_units):
        if unit >= 128:
            trays = [_tray_fields("0", by_slot.get(unit))]
        else:
            exist_bits |= 1 << unit
            trays = []
            for tray in range(4):
                material = by_slot.get(unit * 4 + tray)
                if material is not None:
                    tray_bits |= 1 << (unit * 4 + tray)
                trays.append(_tray_fields(str(tray), material))
        units.append({"id": str(unit), "humidity": "4", "temp": "25.0", "tray": trays})
    vt_tray = _tray_fields(str(vt_tray_id), by_slot.get(EXTERNAL_SLOT))
    return {
        "ams": {
            "ams": units,
            "ams_exist_bits": format(exist_bits, "x"),
            "tray_exist_bits": format(tray_bits, "x"),
            "tray_is_bbl_bits": format(tray_bits, "x"),
            "tray_tar": str(tray_now),
            "tray_now": str(tray_now),
            "tray_pre": str(tray_now),
            "tray_read_done_bits": format(tray_bits, "x"),
            "tray_reading_bits": "0",
            "version": 1,
            "insert_flag": True,
            "power_on_flag": False,
        },
        "vt_tray": vt_tray,
    }


def device_fields() -> dict[str, Any]:
    """Fields a farm does not act on but a real report carries; built once per printer and shared."""
    return {
        "upgrade_state": {
            "sequence_id": 0,
            "progress": "",
            "status": "IDLE",
            "consistency_request": False,
            "dis_state": 0,
            "err_code": 0,
            "force_upgrade": False,
            "message": "0%, 0B/s",
            "module": "",
            "new_version_state": 0,
            "cur_state_code": 0,
            "idx2": 0,
            "new_ver_list": [],
        },
        "ipcam": {
            "ipcam_dev": "1",
            "ipcam_record": "disable",
            "timelapse": "disable",
            "resolution": "",
            "tutk_server": "disable",
            "mode_bits": 3,
        },
        "xcam": {"buildplate_marker_detector": True},
        "upload": {"status": "idle", "progress": 0, "message": ""},
        "net": {"conf": 0, "info": [{"ip": 16777343, "mask": 16777215}]},
        "lights_report": [{"node": "chamber_light", "mode": "on"}],
        "online": {"ahb": False, "rfid": False, "version": 1},
    }


def version_modules(profile: ModelProfile, serial: str, ams_units: list[int]) -> list[dict[str, Any]]:
    modules: list[dict[str, Any]] = [
        {
            "name": "ota",
            "project_name": profile.project_name,
            "product_name": profile.product_name,
            "sw_ver": profile.ota_version,
            "hw_ver": "OTA",
            "sn": serial,
            "flag": 3,
        },
        {"name": "mc", "sw_ver": "00.00.29.75", "loader_ver": "00.00.00.23", "hw_ver": "MC07", "sn": serial, "flag": 0},
        {"name": "th", "sw_ver": "00.00.09.95", "loader_ver": "00.00.00.14", "hw_ver": "TH09", "sn": serial, "flag": 0},
        {"name": "esp32", "sw_ver": "01.11.32.89", "hw_ver": "AP04", "sn": serial, "flag": 0},
    ]
    for unit in ams_units:
        modules.append(
            {
                "name": f"n3f/{unit}" if unit >= 128 else f"ams/{unit}",
                "sw_ver": "00.00.06.49",
                "hw_ver": "AMS08",
                "sn": f"{serial}-AMS{unit}",
                "flag": 0,
            }
        )
    return modules


def _by_id(items: list[Any]) -> dict[str, dict[str, Any]] | None:
    """Lists that a gateway merges element by element (``ams.ams``, ``tray``) are keyed by ``id``."""
    result: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or "id" not in item:
            return None
        result[str(item["id"])] = item
    return result


def report_delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Fields of ``new`` that differ from ``old``, as a P1 printer sends them.

    Dicts are diffed field by field; lists of objects with an ``id`` (AMS units, trays) carry only the
    changed elements (with their ``id``) when the set of ids is unchanged; other lists go whole.
    """
    out: dict[str, Any] = {}
    for key, value in new.items():
        if key in _VOLATILE:
            continue
        previous = old.get(key, _MISSING)
        if previous is value:
            continue
        if isinstance(value, dict) and isinstance(previous, dict):
            nested = report_delta(previous, value)
            if nested:
                out[key] = nested
        elif isinstance(value, list) and isinstance(previous, list) and value != previous:
            old_items, new_items = _by_id(previous), _by_id(value)
            if old_items is not None and new_items is not None and old_items.keys() == new_items.keys():
                changed = []
                for item_id, item in new_items.items():
                    nested = report_delta(old_items[item_id], item)
                    if nested:
                        changed.append({"id": item["id"], **nested})
                out[key] = changed
            else:
                out[key] = value
        elif previous != value:
            out[key] = value
    return out


_MISSING: Any = object()


def push_status(
    lifecycle: PrintLifecycle,
    now: float,
    *,
    device: dict[str, Any],
    materials_block: dict[str, Any],
    sequence_id: int,
) -> dict[str, Any]:
    """The ``print`` object of a full ``push_status`` for the lifecycle as of ``now``."""
    job, state = lifecycle.job, lifecycle.gcode_state
    percent, remaining, layer, prepare = lifecycle.progress(now)
    active = state in ACTIVE_STATES
    nozzle_target = bed_target = 0
    nozzle = bed = _AMBIENT
    if active:
        material = next((m for m in lifecycle.materials if m.slot == lifecycle.tray_now), None)
        _, _, nozzle_target, bed_target = material_temperatures(material.type if material else "PLA")
        warm = prepare / 100 if state == PREPARE else 1.0
        nozzle = round(_AMBIENT + (nozzle_target - _AMBIENT) * warm, 2)
        bed = round(_AMBIENT + (bed_target - _AMBIENT) * warm, 2)
    ids = job.ids if job else {}
    return {
        **device,
        "nozzle_temper": nozzle,
        "nozzle_target_temper": nozzle_target,
        "bed_temper": bed,
        "bed_target_temper": bed_target,
        "chamber_temper": _AMBIENT,
        "mc_print_stage": "2" if active else "1",
        "heatbreak_fan_speed": "15" if active else "0",
        "cooling_fan_speed": "15" if state == RUNNING else "0",
        "big_fan1_speed": "0",
        "big_fan2_speed": "0",
        "mc_percent": percent,
        "mc_remaining_time": remaining,
        "ams_status": 768 if active and lifecycle.tray_now < EXTERNAL_SLOT else 0,
        "ams_rfid_status": 6,
        "hw_switch_state": 1,
        "spd_mag": 100,
        "spd_lvl": 2,
        "print_error": lifecycle.print_error,
        "lifecycle": "product",
        "wifi_signal": "-45dBm",
        "gcode_state": state,
        "gcode_file_prepare_percent": str(prepare),
        "queue_number": 0,
        "queue_total": 0,
        "queue_est": 0,
        "queue_sts": 0,
        "project_id": ids.get("project_id", "0"),
        "profile_id": ids.get("profile_id", "0"),
        "task_id": ids.get("task_id", "0"),
        "subtask_id": ids.get("subtask_id", "0"),
        "subtask_name": job.subtask_name if job else "",
        "gcode_file": job.file if job else "",
        "stg": [],
        "stg_cur": 0 if active else 255,
        "print_type": "local" if active else "idle",
        "home_flag": 0,
        "mc_print_line_number": "0",
        "mc_print_sub_stage": 0,
        "sdcard": True,
        "force_upgrade": False,
        "mess_production_state": "active",
        "layer_num": layer,
        "total_layer_num": job.total_layers if job else 0,
        "s_obj": [],
        "filam_bak": [],
        "fan_gear": 0,
        "nozzle_diameter": "0.4",
        "nozzle_type": "hardened_steel",
        "cali_version": 0,
        "k": "0.0200",
        "flag3": 15,
        "hms": lifecycle.hms,
        **materials_block,
        "command": "push_status",
        "msg": 0,
        "sequence_id": str(sequence_id),
    }


class StatusReports:
    """The ``push_status`` reports of one printer: numbered, full after `restart` (or always, for models
    that send full reports), P1-style deltas from the last one sent otherwise."""

    def __init__(self, spec: PrinterSpec, lifecycle: PrintLifecycle) -> None:
        self._spec = spec
        self._full_reports = spec.full_reports
        """Looked up once: the model's profile is found by normalising its name, a regex per report."""
        self._lifecycle = lifecycle
        self._device = device_fields()
        self._seq = 0
        self._last_sent: dict[str, Any] | None = None
        self._materials_key: tuple[tuple[MaterialSpec, ...], int] | None = None
        self._materials_block: dict[str, Any] = {}
        self._encoded_body: dict[str, Any] | None = None
        self._encoded_head = b""
        self.sent = 0

    def restart(self) -> None:
        """The next report is a full one, so deltas start from something the subscriber has seen."""
        self._last_sent = None

    def current(self, now: float) -> dict[str, Any]:
        """The full report as of now, without consuming a sequence id."""
        return push_status(
            self._lifecycle,
            now,
            device=self._device,
            materials_block=self._materials_fields(),
            sequence_id=self._seq,
        )

    def next_payload(self, now: float, *, full: bool = False) -> bytes:
        """The next report to publish, counted as sent. Its `sequence_id` comes last, so the JSON before it
        is encoded once and reused while the report says the same thing (an idle printer's every report)."""
        report = self.current(now)
        del report["sequence_id"]
        self._seq += 1
        previous = self._last_sent
        self._last_sent = report
        if full or previous is None or self._full_reports:
            body = report
        else:
            body = {"command": "push_status", **report_delta(previous, report), "msg": 1}
        if body != self._encoded_body:
            self._encoded_body = body
            self._encoded_head = json.dumps({"print": body}, separators=(",", ":")).encode()[:-2]
        self.sent += 1
        return b'%b,"sequence_id":"%d"}}' % (self._encoded_head, self._seq)

    def _materials_fields(self) -> dict[str, Any]:
        """Built again only when the spools or the active tray change: most reports share one block."""
        key = (self._lifecycle.materials, self._lifecycle.tray_now)
        if self._materials_key is None or key[0] is not self._materials_key[0] or key[1] != self._materials_key[1]:
            self._materials_key = key
            self._materials_block = materials_fields(
                key[0], ams_units=self._spec.ams_units, vt_tray_id=self._spec.vt_tray_id, tray_now=key[1]
            )
        return self._materials_block
