"""G-code reading: the slicer's header/footer comments give time, weight and filaments.

Slicers write these summaries at the start (Bambu Studio, Orca, Cura) or at the end (PrusaSlicer,
Orca), so only the head and the tail of the file are read, however large it is. Comment lines are split
with string operations, not a regular expression, so a hostile 2 MiB line costs linear time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts.colours import canonical_color

from .budget import ByteSource, InspectionBudget, InspectionLimits, size_of
from .errors import FileRejected
from .model import Filament, FileInfo, FileKind

HEAD_BYTES = 2 << 20
TAIL_BYTES = 1 << 20
DEFAULT_DIAMETER_MM = 1.75
DEFAULT_DENSITY = 1.24
DENSITY_BY_TYPE = {
    "PLA": 1.24,
    "PETG": 1.27,
    "PET": 1.27,
    "ABS": 1.04,
    "ASA": 1.07,
    "TPU": 1.21,
    "PA": 1.14,
    "PC": 1.20,
    "PVA": 1.23,
    "HIPS": 1.04,
}

_COMMAND = re.compile(rb"^[ \t]*[GMTgmt]\d+", re.MULTILINE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.IGNORECASE)
_DURATION_FULL = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*[dhms])+\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_BGCODE_MAGIC = b"GCDE"
_MAX_VALUE_CHARS = 8192
"""Longer than any summary value a slicer writes (a list of filament weights or colours); a longer one
is skipped unread, so hostile values cost no number or duration parsing."""


@dataclass
class GcodeSummary:
    """What the slicer comments say; every field may be missing."""

    print_seconds: float | None = None
    grams: float | None = None
    filaments: tuple[Filament, ...] = ()
    warnings: list[str] = field(default_factory=list)

    @property
    def print_minutes(self) -> float | None:
        return None if self.print_seconds is None else round(self.print_seconds / 60.0, 2)


def parse_duration(text: str) -> float | None:
    """Seconds from '1d 2h 3m 4s' style text, or from a bare number of seconds."""
    text = text.strip()
    if _DURATION_FULL.match(text):
        seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION_PART.findall(text))
    elif _NUMBER.fullmatch(text):
        seconds = float(text)
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _numbers(text: str) -> list[float]:
    """Non-negative finite numbers only: a weight or length can be neither negative nor infinite."""
    values = (float(n) for n in _NUMBER.findall(text))
    return [v for v in values if math.isfinite(v) and v >= 0]


def _items(text: str) -> list[str]:
    return [item.strip().strip('"') for item in re.split(r"[;,]", text)]


def comment_key_value(line: str) -> tuple[str, str] | None:
    """`; key: value` or `; key = value` → (key, value), both stripped; the first ':' or '=' separates."""
    if not line.startswith(";"):
        return None
    body = line[1:]
    colon, equals = body.find(":"), body.find("=")
    cut = min(i for i in (colon, equals, len(body)) if i >= 0)
    if cut == len(body):
        return None
    key = body[:cut].strip()
    if not key:
        return None
    return key, body[cut + 1 :].strip()


class _Collector:
    """First value per key wins: the header is authoritative, later repeats are ignored."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def feed(self, line: str) -> None:
        pair = comment_key_value(line)
        if pair is None:
            return
        key, value = pair[0].lower(), pair[1]
        if len(value) > _MAX_VALUE_CHARS:
            return
        if key == "model printing time":
            model, _, rest = value.partition(";")
            self.values.setdefault(key, model.strip())
            total = comment_key_value(";" + rest)
            if total and total[0].lower() == "total estimated time":
                self.values.setdefault("total estimated time", total[1])
            return
        self.values.setdefault(key, value)

    def get(self, *keys: str) -> str | None:
        for key in keys:
            if key in self.values:
                return self.values[key]
        return None


def summarise_lines(lines: Iterable[str]) -> GcodeSummary:
    """Summarise slicer comment lines (also the PrusaSlicer config in a 3MF, same syntax)."""
    collector = _Collector()
    for line in lines:
        if line.startswith(";"):
            collector.feed(line)
    return _summarise(collector)


def _summarise(c: _Collector) -> GcodeSummary:
    summary = GcodeSummary()
    for keys in (
        ("total estimated time",),
        ("estimated printing time (normal mode)", "estimated printing time"),
        ("time", "print.time"),
        ("model printing time",),
    ):
        text = c.get(*keys)
        seconds = parse_duration(text) if text is not None else None
        if seconds is not None:
            summary.print_seconds = seconds
            break

    types = [t for t in _items(c.get("filament_type") or "") if t]
    colours = [canonical_color(t) for t in _items(c.get("filament_colour", "filament_color") or "")]
    colours = colours if any(colours) else []
    per_filament = _numbers(c.get("filament used [g]") or "")
    count = max(len(types), len(colours), len(per_filament))
    aligned = bool(per_filament) and (len(per_filament) == count)
    filaments = [
        Filament(
            type=types[i] if i < len(types) else None,
            color=colours[i] if i < len(colours) else None,
            grams=round(per_filament[i], 2) if aligned else None,
        )
        for i in range(count)
    ]
    if aligned and any(f.grams for f in filaments):
        filaments = [f for f in filaments if f.grams]
    if len(filaments) > 1 and not aligned:
        summary.warnings.append("the G-code lists several filaments without the grams each one uses")
    summary.filaments = tuple(filaments)
    summary.grams = _total_grams(c, per_filament, types, summary.warnings)
    return summary


def _total_grams(c: _Collector, per_filament: list[float], types: list[str], warnings: list[str]) -> float | None:
    total = _numbers(c.get("total filament weight [g]", "total filament used [g]") or "")
    if total:
        return round(total[0], 2)
    if per_filament:
        return round(sum(per_filament), 2)
    densities = _numbers(c.get("filament_density") or "")
    density = (
        densities[0]
        if densities and densities[0] > 0
        else DENSITY_BY_TYPE.get(types[0].upper() if types else "", DEFAULT_DENSITY)
    )
    volumes = _numbers(c.get("filament used [cm3]") or "")
    if volumes:
        return round(sum(volumes) * density, 2)
    lengths = c.get("filament used")
    if lengths is not None:
        metres = _numbers(lengths)
        if metres:
            diameters = _numbers(c.get("filament_diameter") or "")
            diameter = diameters[0] if diameters and diameters[0] > 0 else DEFAULT_DIAMETER_MM
            area_mm2 = math.pi * (diameter / 2) ** 2
            warnings.append(f"grams estimated from the filament length ({diameter} mm filament, {density} g/cm³)")
            return round(sum(metres) * 1000 * area_mm2 / 1000 * density, 2)
    return None


def _head_and_tail(stream: ByteSource, size: int) -> tuple[bytes, bytes, bool]:
    """The first and last bytes of a stream; the flag says whether they join up (nothing skipped)."""
    head = stream.read(HEAD_BYTES)
    if len(head) < HEAD_BYTES or size <= HEAD_BYTES:
        return head, b"", True
    start = max(HEAD_BYTES, size - TAIL_BYTES)
    stream.seek(start)
    tail = stream.read(TAIL_BYTES)
    return head, tail, start == HEAD_BYTES


def _lines(head: bytes, tail: bytes, joined: bool) -> list[str]:
    if joined:
        raw = (head + tail).split(b"\n")
    else:
        raw = head.split(b"\n")[:-1] + tail.split(b"\n")[1:]
    return [line.decode("utf-8", "replace").rstrip("\r") for line in raw if line.lstrip().startswith(b";")]


def summarise_stream(stream: ByteSource, size: int) -> tuple[GcodeSummary, bool]:
    """Summary of a G-code stream and whether it contains any G-code command at either end."""
    head, tail, joined = _head_and_tail(stream, size)
    has_commands = bool(_COMMAND.search(head) or _COMMAND.search(tail))
    return summarise_lines(_lines(head, tail, joined)), has_commands and b"\x00" not in head


def read_gcode(source: ByteSource, budget: InspectionBudget | None = None) -> FileInfo:
    budget = budget or InspectionBudget(InspectionLimits())
    size = size_of(source)
    stream = budget.metered(source, compressed=False)
    if size == 0:
        raise FileRejected("file", "not G-code: the file is empty")
    magic = stream.read(4)
    if magic == _BGCODE_MAGIC:
        raise FileRejected("file", "binary G-code (.bgcode) is not supported; export plain G-code")
    stream.seek(0)
    summary, has_commands = summarise_stream(stream, size)
    if not has_commands:
        raise FileRejected("file", "not G-code: no G-code commands at the start or end of the file")
    if summary.print_seconds is None:
        summary.warnings.append("no estimated print time in the G-code comments")
    if summary.grams is None:
        summary.warnings.append("no filament weight in the G-code comments")
    return FileInfo(
        kind=FileKind.GCODE,
        filaments=summary.filaments,
        print_minutes=summary.print_minutes,
        grams=summary.grams,
        warnings=tuple(summary.warnings),
    )
