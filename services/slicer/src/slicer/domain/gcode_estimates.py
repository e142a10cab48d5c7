"""What PrusaSlicer's own output comments say a print takes: time, filament, layers.

PrusaSlicer writes its estimates as comments after the last move (`; estimated printing time (normal
mode) = 1h 2m 3s`, `; filament used [mm] = ...`, `; total filament used [g] = ...`) and a
`;LAYER_CHANGE` line before every layer. Only the head and the tail of the file are searched for the
comments, so a 100 MB G-code costs no more than a small one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_TAIL_BYTES = 256 * 1024
_TIME = re.compile(rb"^;\s*estimated printing time \(normal mode\)\s*=\s*(?P<value>[^\r\n]+)", re.MULTILINE)
_GRAMS = re.compile(rb"^;\s*total filament used \[g\]\s*=\s*(?P<value>[-0-9.eE+, ]+)", re.MULTILINE)
_GRAMS_PER_EXTRUDER = re.compile(rb"^;\s*filament used \[g\]\s*=\s*(?P<value>[-0-9.eE+, ]+)", re.MULTILINE)
_MM = re.compile(rb"^;\s*filament used \[mm\]\s*=\s*(?P<value>[-0-9.eE+, ]+)", re.MULTILINE)
_LAYER_CHANGE = re.compile(rb"^;LAYER_CHANGE\s*$", re.MULTILINE)
_MAX_Z = re.compile(rb"^;Z:(?P<value>[0-9.]+)\s*$", re.MULTILINE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


class EstimateMissing(ValueError):
    """The G-code lacks PrusaSlicer's time estimate: it was not made by the slicer we ran."""


@dataclass(frozen=True)
class GcodeEstimate:
    print_seconds: float
    grams: float
    filament_mm: float | None
    layers: int
    max_z: float | None

    @property
    def print_minutes(self) -> float:
        return round(self.print_seconds / 60.0, 2)


def parse_duration(text: str) -> float | None:
    """`"1d 2h 3m 4s"` → 93784.0; None when nothing in it is a duration."""
    parts = _DURATION_PART.findall(text)
    if not parts:
        return None
    return sum(float(value) * _UNIT_SECONDS[unit.lower()] for value, unit in parts)


def _sum(raw: bytes) -> float:
    """`"1.5, 2.25"` (one figure per extruder) → 3.75."""
    total = 0.0
    for part in raw.decode("ascii", "replace").split(","):
        part = part.strip()
        if part:
            total += float(part)
    return total


def count_layers(gcode: bytes) -> int:
    return len(_LAYER_CHANGE.findall(gcode))


def read_estimates(gcode: bytes, *, density_g_cm3: float | None = None, diameter_mm: float = 1.75) -> GcodeEstimate:
    tail = gcode[-_TAIL_BYTES:]
    time_match = _TIME.search(tail)
    seconds = parse_duration(time_match["value"].decode("ascii", "replace")) if time_match else None
    if seconds is None:
        raise EstimateMissing("the G-code has no '; estimated printing time (normal mode)' line")
    mm_match = _MM.search(tail)
    filament_mm = _sum(mm_match["value"]) if mm_match else None
    grams_match = _GRAMS.search(tail) or _GRAMS_PER_EXTRUDER.search(tail)
    if grams_match is not None:
        grams = _sum(grams_match["value"])
    elif filament_mm is not None and density_g_cm3:
        grams = filament_mm * math.pi * (diameter_mm / 2) ** 2 * density_g_cm3 / 1000.0
    else:
        grams = 0.0
    heights = [float(m) for m in _MAX_Z.findall(gcode)]
    return GcodeEstimate(
        print_seconds=seconds,
        grams=round(grams, 2),
        filament_mm=round(filament_mm, 2) if filament_mm is not None else None,
        layers=count_layers(gcode),
        max_z=max(heights) if heights else None,
    )
