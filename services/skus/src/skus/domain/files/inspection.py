"""Which reader a part file needs, decided by its uploaded name."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import BinaryIO

from .budget import InspectionBudget, InspectionLimits
from .errors import FileRejected
from .gcode import read_gcode
from .model import FileInfo, FileKind
from .scad import read_scad
from .stl import read_stl
from .threemf import read_3mf

_SUFFIXES = (
    (".gcode.3mf", FileKind.GCODE_3MF),
    (".3mf", FileKind.THREEMF),
    (".gcode", FileKind.GCODE),
    (".stl", FileKind.STL),
    (".scad", FileKind.SCAD),
)


def kind_from_filename(filename: str) -> FileKind:
    lowered = filename.strip().lower()
    for suffix, kind in _SUFFIXES:
        if lowered.endswith(suffix):
            return kind
    raise FileRejected("file", f"unsupported file type {filename!r}: expected .3mf, .gcode.3mf, .gcode, .stl or .scad")


def inspect_file(
    source: BinaryIO,
    filename: str,
    limits: InspectionLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FileInfo:
    """Reads the whole of `source`, a seekable binary stream the caller opened and closes; `filename`
    is the uploaded name that decides its kind. The reading stays within `limits` (time, decompressed
    bytes, archive members, XML depth)."""
    kind = kind_from_filename(filename)
    budget = InspectionBudget(limits or InspectionLimits(), clock)
    if kind is FileKind.STL:
        return read_stl(source, budget)
    if kind is FileKind.GCODE:
        return read_gcode(source, budget)
    if kind is FileKind.SCAD:
        return read_scad(source, budget)
    return read_3mf(source, kind, budget)
