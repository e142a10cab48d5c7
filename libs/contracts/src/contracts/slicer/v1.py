"""slicer.v1: sliced files made from a part's source (OpenSCAD with parameter values, STL, 3MF).

The queue asks with `queue.v1.cmd.slice_part` (a work queue shared by N slicer replicas); the
slicer answers every request with exactly one `SliceCompleted` or `SliceFailed`, echoing its
`slice_key`. Answers to the same request are deduplicated by envelope id, so a redelivered request
never doubles an answer, while a later request for a slice already made is answered again from the
cache (with `cached: true`) without slicing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from contracts.envelope import ContractMessage
from contracts.shared_values import FileRef, Frozen, Material

SLICED_FILES_BUCKET = "sliced-files"
"""JetStream object store bucket the slicer owns: sliced files keyed by their sha256."""

SliceStage = Literal["fetch", "render", "slice", "package", "profile"]


class SliceEstimate(Frozen):
    """What the slicer's own output says the print takes."""

    print_minutes: float
    grams: float
    layers: int | None = None
    filament_mm: float | None = None


class SliceCompleted(ContractMessage):
    """A sliced file exists for `slice_key`; `file.bucket` is `sliced-files`."""

    SUBJECT: ClassVar[str] = "slicer.v1.slice.completed"

    slice_key: str
    source_sha256: str
    parameters: dict[str, Any] = {}
    printer_model: str
    fabmatic: bool = False
    material: Material
    profile: str
    file: FileRef
    estimate: SliceEstimate
    cached: bool = False
    completed_at: datetime


class SliceFailed(ContractMessage):
    """The part cannot be made for `slice_key`: `error` is the tool's own message (OpenSCAD's,
    PrusaSlicer's) or why no profile fits; `stage` says where it stopped. Not retried: the same
    inputs fail the same way."""

    SUBJECT: ClassVar[str] = "slicer.v1.slice.failed"

    slice_key: str
    source_sha256: str
    printer_model: str
    fabmatic: bool = False
    material: Material
    stage: SliceStage
    error: str
    failed_at: datetime
