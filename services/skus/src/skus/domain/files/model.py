"""What the readers learn about a part file: plain values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

ScalarValue = bool | int | float | str
ParameterType = Literal["number", "string", "boolean"]


class FileKind(StrEnum):
    STL = "stl"
    THREEMF = "3mf"
    GCODE_3MF = "gcode.3mf"
    GCODE = "gcode"
    SCAD = "scad"


@dataclass(frozen=True)
class Filament:
    """One filament a print uses; `type` is None when the slicer did not say (Cura)."""

    type: str | None
    color: str | None = None
    grams: float | None = None


@dataclass(frozen=True)
class Plate:
    """A build plate of a 3MF project; `gcode` names its sliced member, if any."""

    number: int
    gcode: str | None = None
    print_minutes: float | None = None
    grams: float | None = None
    filaments: tuple[Filament, ...] = ()


@dataclass(frozen=True)
class BoundingBox:
    min_xyz: tuple[float, float, float]
    max_xyz: tuple[float, float, float]

    @property
    def size(self) -> tuple[float, float, float]:
        return (
            self.max_xyz[0] - self.min_xyz[0],
            self.max_xyz[1] - self.min_xyz[1],
            self.max_xyz[2] - self.min_xyz[2],
        )


@dataclass(frozen=True)
class Option:
    value: ScalarValue
    label: str | None = None


@dataclass(frozen=True)
class Parameter:
    """An OpenSCAD customizer parameter, shaped like the API's `parameters` entries."""

    name: str
    type: ParameterType
    default: ScalarValue
    description: str | None = None
    options: tuple[Option, ...] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    group: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The API shape: absent keys instead of nulls; options as plain values unless labelled."""
        out: dict[str, object] = {"name": self.name, "type": self.type, "default": self.default}
        if self.description is not None:
            out["description"] = self.description
        if self.options is not None:
            if any(o.label is not None for o in self.options):
                out["options"] = [
                    {"value": o.value, "label": o.label if o.label is not None else str(o.value)} for o in self.options
                ]
            else:
                out["options"] = [o.value for o in self.options]
        for key, number in (("min", self.min), ("max", self.max), ("step", self.step)):
            if number is not None:
                out[key] = number
        if self.group is not None:
            out["group"] = self.group
        return out


@dataclass(frozen=True)
class FileInfo:
    """Everything read from one part file; totals over all plates for multi-plate projects."""

    kind: FileKind
    plates: tuple[Plate, ...] = ()
    filaments: tuple[Filament, ...] = ()
    print_minutes: float | None = None
    grams: float | None = None
    triangle_count: int | None = None
    bounding_box: BoundingBox | None = None
    parameters: tuple[Parameter, ...] = ()
    fixed_parameters: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
