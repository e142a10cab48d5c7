"""What the pipeline is asked to make, and what it hands back.

A `SliceJob` names every input that changes the printed file: the source (by sha256), the order
line's parameter values, the target printer model (with or without FabMatic bed clearing) and the
material. The pipeline turns it into one `SlicedFile` the printer prints as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

SourceKind = Literal["scad", "stl", "3mf"]
SlicedKind = Literal["gcode.3mf", "gcode"]


@dataclass(frozen=True)
class SliceJob:
    source_sha256: str
    source_kind: SourceKind
    source_filename: str
    parameters: Mapping[str, object]
    """The order line's values (validated by orders: str, int, float or bool); only `.scad` uses them."""
    printer_model: str
    """As printers report it ("X1C", "P1S", "A1 mini", "Bambu Lab X1 Carbon", ...); normalised here."""
    fabmatic: bool
    material_type: str
    material_color: str | None
    """`#RRGGBB`, or None when any colour will do."""


@dataclass(frozen=True)
class SlicedFile:
    content: bytes
    filename: str
    kind: SlicedKind
    sha256: str
    profile: str
    """Which profiles made it, e.g. `bambu-x1c/pla` or `bambu-p1s/petg+fabmatic`."""
    print_minutes: float
    grams: float
    layers: int | None
    filament_mm: float | None
