"""The shape of ``push_status`` reports and ``get_version`` replies, and P1-style deltas between reports.

Field names and value types follow the captured reports of real printers in the repository's
``tests/fixtures/bambu``; the simulator's tests compare against them.
"""

from __future__ import annotations

from typing import Any

from printer_simulator.catalog import EXTERNAL_SLOT, MaterialSpec, ModelProfile, material_temperatures

_VOLATILE = ("command", "msg", "sequence_id")


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
