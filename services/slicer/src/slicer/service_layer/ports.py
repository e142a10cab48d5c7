"""What the service layer needs from the outside: the slicing pipeline and the two object stores.

The pipeline (render OpenSCAD, slice, package for the printer) is pure work on bytes behind
`SlicePipeline`; its job and result types are re-exported here so the service layer names one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

SourceKind = Literal["scad", "stl", "3mf"]
SliceStage = Literal["fetch", "render", "slice", "package", "profile"]


@dataclass(frozen=True)
class SliceJob:
    source_sha256: str
    source_kind: SourceKind
    source_filename: str
    parameters: Mapping[str, object]
    printer_model: str
    fabmatic: bool
    material_type: str
    material_color: str | None


@dataclass(frozen=True)
class SlicedFile:
    content: bytes
    filename: str
    kind: Literal["gcode.3mf", "gcode"]
    sha256: str
    profile: str
    print_minutes: float
    grams: float
    layers: int | None
    filament_mm: float | None


class SliceError(Exception):
    """The tools refused these inputs; `message` is their own words."""

    def __init__(self, stage: SliceStage, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage: SliceStage = stage
        self.message = message


class SlicePipeline(Protocol):
    def cache_key(self, job: SliceJob) -> str: ...

    def profile_for(self, job: SliceJob) -> str: ...

    async def make_printable(self, job: SliceJob, source: bytes) -> SlicedFile: ...


class SourceNotFound(Exception):
    """The part's source is not in `part-files`: nothing to slice (not an outage)."""


class SourceFiles(Protocol):
    """The skus service's `part-files` object store, read by sha256."""

    async def get(self, sha256: str) -> bytes: ...


class SlicedFiles(Protocol):
    """The slicer's own `sliced-files` object store, written by sha256 (idempotent)."""

    async def put(self, sha256: str, content: bytes) -> None: ...
