"""Value shapes several owners' messages carry: a material, a file reference, an assignment; and their frozen base."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Material(Frozen):
    """A filament: type (`PLA`, `PETG`, ...) and optional colour `#RRGGBB`."""

    type: str
    color: str | None = None
    profile: str | None = None


class FileRef(Frozen):
    """A file in a JetStream object store, keyed by sha256: `bucket` None is the skus service's
    `part-files` (a part's upload); `sliced-files` holds what the slicer made."""

    sha256: str
    filename: str
    kind: Literal["stl", "3mf", "gcode.3mf", "gcode", "scad"]
    size_bytes: int
    plate: str | None = None
    bucket: str | None = None


class Assignment(Frozen):
    """Which printers may take a job: any, one specific printer, or any printer carrying all the tags."""

    mode: Literal["next_available", "printer", "tags"] = "next_available"
    printer_id: str | None = None
    tags: list[str] = []


ParameterValues = dict[str, Any]
