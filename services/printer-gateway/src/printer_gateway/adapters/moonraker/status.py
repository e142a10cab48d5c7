"""Moonraker's printer objects (`print_stats`, `virtual_sdcard`, `webhooks`, ...) as a `PrinterStatus`.
Pure: the connection merges `notify_status_update` deltas and calls `parse_status` on the result."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from contracts.colours import canonical_color
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterState, PrinterStatus

JsonObject = dict[str, Any]

SUBSCRIBED_OBJECTS: JsonObject = {
    name: None for name in ("print_stats", "virtual_sdcard", "display_status", "heater_bed", "extruder", "webhooks")
}

PRINT_STATES: Mapping[str, tuple[str, PrinterState]] = {
    "standby": ("IDLE", "idle"),
    "printing": ("RUNNING", "printing"),
    "paused": ("PAUSE", "paused"),
    "complete": ("FINISH", "finished"),
    "cancelled": ("CANCELLED", "finished"),
    "error": ("FAILED", "finished"),
}
"""`print_stats.state` → the lifecycle's phase and the printer's state. A print that ended in an error
leaves Klipper ready for the next one: the bed not being clear is what holds it."""


def merge_objects(cached: Mapping[str, Any], delta: Mapping[str, Any]) -> JsonObject:
    """`notify_status_update` carries only changed fields, object by object (one level of nesting
    below the object, e.g. `print_stats.info`, is merged too)."""
    merged: JsonObject = {name: dict(fields) for name, fields in cached.items() if isinstance(fields, Mapping)}
    for name, fields in delta.items():
        if not isinstance(fields, Mapping):
            continue
        target = merged.setdefault(name, {})
        for key, value in fields.items():
            old = target.get(key)
            target[key] = {**old, **value} if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return merged


def job_name(filename: object) -> str | None:
    """The job a print belongs to: we upload `<job id>.gcode`, Klipper reports the file's path."""
    if not isinstance(filename, str) or not filename.strip():
        return None
    name = PurePosixPath(filename.strip()).name
    return name[: -len(".gcode")] if name.lower().endswith(".gcode") else name


def parse_status(objects: Mapping[str, Any], materials: tuple[LoadedMaterial, ...] = ()) -> PrinterStatus:
    """Normalize the merged objects; tolerant of missing or malformed fields, never raises."""
    webhooks = _object(objects, "webhooks")
    stats = _object(objects, "print_stats")
    klippy = _text(webhooks.get("state")) or "ready"
    filename = job_name(stats.get("filename"))
    raw_state = (_text(stats.get("state")) or "standby").lower()
    if klippy in ("shutdown", "error"):
        message = _text(webhooks.get("state_message")) or f"Klipper {klippy}"
        return PrinterStatus(
            online=True,
            state="error",
            gcode_state="FAILED" if raw_state in ("printing", "paused", "error") else None,
            subtask_name=filename,
            materials=materials,
            error_reason=f"Klipper {klippy}: {message}",
        )
    if klippy != "ready":
        return PrinterStatus(online=False, state="offline", materials=materials, error_reason=f"Klipper {klippy}")
    gcode_state, state = PRINT_STATES.get(raw_state, ("IDLE", "idle"))
    sdcard, display = _object(objects, "virtual_sdcard"), _object(objects, "display_status")
    fraction = _fraction(sdcard.get("progress"))
    if fraction is None:
        fraction = _fraction(display.get("progress"))
    active = gcode_state in ("RUNNING", "PAUSE")
    percent = None
    if gcode_state == "FINISH":
        percent = 100
    elif active and fraction is not None:
        percent = min(99, int(fraction * 100))
    info = _object(stats, "info")
    stats_message = _text(stats.get("message"))
    return PrinterStatus(
        online=True,
        state=state,
        gcode_state=gcode_state,
        progress_percent=percent,
        remaining_minutes=_remaining_minutes(stats.get("print_duration"), fraction) if active else None,
        layer=_count(info.get("current_layer")) if active else None,
        total_layers=_count(info.get("total_layer")) if active else None,
        subtask_name=filename,
        gcode_file=_text(stats.get("filename")),
        materials=materials,
        error_reason=stats_message if gcode_state in ("FAILED", "PAUSE", "CANCELLED") else None,
    )


def spool_material(spool: Mapping[str, Any]) -> tuple[LoadedMaterial, ...]:
    """The active Spoolman spool as the printer's one loaded material."""
    filament = spool.get("filament")
    if not isinstance(filament, Mapping):
        return ()
    material = _text(filament.get("material"))
    if material is None:
        return ()
    remaining, weight = spool.get("remaining_weight"), filament.get("weight")
    remain = None
    if isinstance(remaining, int | float) and isinstance(weight, int | float) and weight > 0:
        remain = max(0, min(100, round(100 * remaining / weight)))
    return (
        LoadedMaterial(
            slot=0,
            type=material.upper(),
            color=canonical_color(filament.get("color_hex")),
            profile=None,
            remain_percent=remain,
        ),
    )


def _object(objects: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = objects.get(name)
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _fraction(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(0.0, min(1.0, float(value)))


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _remaining_minutes(print_duration: object, fraction: float | None) -> int | None:
    """Klipper reports time spent; what is left is extrapolated from the file position."""
    if not isinstance(print_duration, int | float) or not fraction or fraction <= 0:
        return None
    return max(0, math.ceil(print_duration * (1 - fraction) / fraction / 60))
