"""Bambu `push_status` reports: merging P1/A1 deltas into a cached state and normalizing it."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from contracts.colours import canonical_color
from printer_gateway.domain.printer_status import (
    EXTERNAL_SPOOL_SLOT,
    LoadedMaterial,
    PrinterState,
    PrinterStatus,
    format_hms,
    format_print_error,
)

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

GCODE_STATES: Mapping[str, PrinterState] = {
    "IDLE": "idle",
    "INIT": "idle",
    "PREPARE": "printing",
    "SLICING": "printing",
    "RUNNING": "printing",
    "PAUSE": "paused",
    "FINISH": "finished",
    "FAILED": "error",
    "OFFLINE": "offline",
}

CANCELLED_PRINT_ERROR = 0x0300400C
DEVELOPER_MODE_OFF_HMS = "0500_0500_0001_0007"
DEVELOPER_MODE_OFF_REASON = "developer mode off (LAN-only control disabled)"
_KNOWN_ERRORS = {
    format_print_error(CANCELLED_PRINT_ERROR): "task cancelled",
    DEVELOPER_MODE_OFF_HMS: DEVELOPER_MODE_OFF_REASON,
}

_ID_KEYED_LISTS = frozenset({("ams", "ams"), ("ams", "ams", "tray")})
"""Lists P1/A1 deltas update element by element (matched by `id`); every other list is replaced."""

_HT_FIRST_UNIT = 128
_NO_TRAY = 255
_EXTERNAL_IDS = frozenset({254, 255})
_warned_states: set[str] = set()


REPORT_COUNTERS = frozenset({"command", "msg", "sequence_id"})
"""Fields of a report that say which report it is, not what the printer is doing: `parse_status` reads none."""


def changes_nothing(cached: Mapping[str, Any], delta: Mapping[str, Any]) -> bool:
    """True when merging `delta` into `cached` would change nothing but the report counters: every other
    field it carries is already cached with an equal value. Most reports of a printer that is not printing
    are such (an X1's full report repeats everything), and comparing costs far less than merging and
    normalizing again."""
    for key, value in delta.items():
        if key not in REPORT_COUNTERS and (key not in cached or cached[key] != value):
            return False
    return True


_SEQUENCE_ID = re.compile(rb'"sequence_id"\s*:\s*"[^"]*"')


def report_fingerprint(payload: bytes) -> bytes:
    """The message's bytes without the values of its string `sequence_id`s, which count messages rather than say
    anything about the printer (a report's own moves on every report). Two reports with one fingerprint say the
    same thing, and merging one after the other changes nothing (merging is idempotent, deltas included), so a
    connection can drop a repeat before parsing it: half a fleet's X1C full reports repeat every second."""
    return _SEQUENCE_ID.sub(b'"sequence_id":""', payload)


def merge_report(cached: Mapping[str, Any], delta: Mapping[str, Any]) -> JsonObject:
    """Deep-merge a report into the cached `print` object without mutating either."""
    return _merge_dict(cached, delta, ())


def _merge_dict(cached: Mapping[str, Any], delta: Mapping[str, Any], path: tuple[str, ...]) -> JsonObject:
    merged = dict(cached)
    for key, new in delta.items():
        old = merged.get(key)
        child = (*path, key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            merged[key] = _merge_dict(old, new, child)
        elif child in _ID_KEYED_LISTS and isinstance(old, list) and isinstance(new, list):
            merged[key] = _merge_by_id(old, new, child)
        else:
            merged[key] = new
    return merged


def _merge_by_id(old: list[Any], new: list[Any], path: tuple[str, ...]) -> list[Any]:
    """Match elements by `id` (the n-th repeat of an id with the n-th, so merging stays idempotent)."""
    if not (_all_have_ids(old) and _all_have_ids(new)):
        return new
    merged: list[Any] = list(old)
    index = {key: position for position, key in enumerate(_occurrence_keys(old))}
    for item, key in zip(new, _occurrence_keys(new), strict=True):
        if key in index:
            merged[index[key]] = _merge_dict(merged[index[key]], item, path)
        else:
            index[key] = len(merged)
            merged.append(item)
    return merged


def _occurrence_keys(items: Sequence[Any]) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    keys = []
    for item in items:
        item_id = str(item["id"])
        seen[item_id] = seen.get(item_id, -1) + 1
        keys.append((item_id, seen[item_id]))
    return keys


def _all_have_ids(items: Sequence[Any]) -> bool:
    return all(isinstance(item, Mapping) and "id" in item for item in items)


def parse_status(report: Mapping[str, Any], *, online: bool = True) -> PrinterStatus:
    """Normalize a merged `print` object; tolerant of missing or malformed fields, never raises."""
    if not isinstance(report, Mapping):
        report = {}
    gcode_state = _text(report.get("gcode_state"))
    print_error = _integer(report.get("print_error")) or None
    print_error_code = format_print_error(print_error) if print_error is not None else None
    hms_codes = _hms_codes(report.get("hms"))
    state, error_reason = _state(gcode_state, print_error_code, hms_codes)
    if not online:
        state = "offline"
    return PrinterStatus(
        online=online,
        state=state,
        gcode_state=gcode_state,
        progress_percent=_bounded(report.get("mc_percent"), 0, 100),
        remaining_minutes=_bounded(report.get("mc_remaining_time"), 0, None),
        layer=_bounded(report.get("layer_num"), 0, None),
        total_layers=_bounded(report.get("total_layer_num"), 0, None),
        prepare_percent=_bounded(report.get("gcode_file_prepare_percent"), 0, 100),
        subtask_name=_text(report.get("subtask_name")),
        gcode_file=_text(report.get("gcode_file")),
        print_error=print_error,
        print_error_code=print_error_code,
        hms_codes=hms_codes,
        materials=_materials(report),
        tray_now=_tray_now(report.get("ams")),
        error_reason=error_reason,
    )


def _state(
    gcode_state: str | None, print_error_code: str | None, hms_codes: tuple[str, ...]
) -> tuple[PrinterState, str | None]:
    if DEVELOPER_MODE_OFF_HMS in hms_codes:
        return "error", DEVELOPER_MODE_OFF_REASON
    if gcode_state is None:
        return "error", "printer has not reported its state"
    state = GCODE_STATES.get(gcode_state.upper())
    if state is None:
        if gcode_state not in _warned_states and len(_warned_states) < 64:
            _warned_states.add(gcode_state)
            log.warning("unknown Bambu gcode_state %r: treating the printer as not ready", gcode_state)
        return "error", f"unknown printer state {gcode_state!r}"
    if state == "error":
        return state, describe_failure(print_error_code, hms_codes) or "print failed"
    if state == "paused":
        return state, describe_failure(print_error_code, hms_codes)
    return state, None


def describe_failure(print_error_code: str | None, hms_codes: Sequence[str]) -> str | None:
    """A short human reason from `print_error` and HMS codes, for operators and job history."""
    parts: list[str] = []
    if print_error_code is not None:
        known = _KNOWN_ERRORS.get(print_error_code)
        parts.append(f"print error {print_error_code}" + (f" ({known})" if known else ""))
    for code in hms_codes:
        known = _KNOWN_ERRORS.get(code)
        parts.append(f"HMS {code}" + (f" ({known})" if known else ""))
    return "; ".join(parts) or None


def _materials(report: Mapping[str, Any]) -> tuple[LoadedMaterial, ...]:
    materials: list[LoadedMaterial] = []
    seen: set[int] = set()
    ams = report.get("ams")
    units = ams.get("ams") if isinstance(ams, Mapping) else None
    for unit in units if isinstance(units, list) else []:
        if not isinstance(unit, Mapping):
            continue
        unit_id = _integer(unit.get("id"))
        trays = unit.get("tray")
        if unit_id is None or unit_id < 0 or not isinstance(trays, list):
            continue
        for tray in trays:
            if not isinstance(tray, Mapping):
                continue
            tray_id = _integer(tray.get("id"))
            if tray_id is None or tray_id < 0:
                continue
            slot = unit_id + tray_id if unit_id >= _HT_FIRST_UNIT else unit_id * 4 + tray_id
            material = _material(slot, tray)
            if material is not None and slot not in seen and slot not in _EXTERNAL_IDS:
                seen.add(slot)
                materials.append(material)
    external = _external_spool(report)
    if external is not None:
        materials.append(external)
    return tuple(materials)


def _external_spool(report: Mapping[str, Any]) -> LoadedMaterial | None:
    """`vt_tray` (id 254 or 255 by model); newer firmware also lists it in `vir_slot`."""
    candidates: list[Any] = [report.get("vt_tray")]
    vir_slot = report.get("vir_slot")
    if isinstance(vir_slot, list):
        candidates.extend(vir_slot)
    for tray in candidates:
        if not isinstance(tray, Mapping):
            continue
        tray_id = _integer(tray.get("id"))
        if tray_id is not None and tray_id not in _EXTERNAL_IDS:
            continue
        material = _material(EXTERNAL_SPOOL_SLOT, tray)
        if material is not None:
            return material
    return None


def _material(slot: int, tray: Mapping[str, Any]) -> LoadedMaterial | None:
    tray_type = _text(tray.get("tray_type"))
    if tray_type is None:
        return None
    remain = _integer(tray.get("remain"))
    return LoadedMaterial(
        slot=slot,
        type=tray_type,
        color=canonical_color(tray.get("tray_color")),
        profile=_text(tray.get("tray_info_idx")),
        remain_percent=min(remain, 100) if remain is not None and remain > 0 else None,
    )


def _tray_now(ams: object) -> int | None:
    if not isinstance(ams, Mapping):
        return None
    tray = _integer(ams.get("tray_now"))
    if tray is None or tray < 0 or tray == _NO_TRAY:
        return None
    return tray


def _hms_codes(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    codes: list[str] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        attr, code = _integer(entry.get("attr")), _integer(entry.get("code"))
        if attr is not None and code is not None:
            codes.append(format_hms(attr, code))
    return tuple(codes)


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _integer(value: object) -> int | None:
    """Bambu sends numbers as ints, floats or decimal strings depending on field and firmware."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 2**63 else None
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return None
            return int(number) if number == number and abs(number) < 2**63 else None
    return None


def _bounded(value: object, low: int, high: int | None) -> int | None:
    number = _integer(value)
    if number is None or number < low:
        return None
    return min(number, high) if high is not None else number


def print_object(message: Mapping[str, Any]) -> JsonObject | None:
    """The `print` object of a status push, or None for anything else on the report topic."""
    body = message.get("print")
    if isinstance(body, dict) and body.get("command") == "push_status":
        return body
    return None
