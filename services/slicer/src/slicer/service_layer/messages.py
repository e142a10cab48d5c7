"""Contract messages ↔ the slicer's domain: a `SlicePart` becomes a `SliceJob`, a slice an answer."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from contracts.queue.v1 import SlicePart
from contracts.shared_values import FileRef, Material
from contracts.slicer.v1 import SLICED_FILES_BUCKET, SliceCompleted, SliceEstimate, SliceFailed
from slicer.domain.model import Answer, SliceFailure, SliceInputs, SliceResult
from slicer.service_layer.ports import SliceJob, SourceKind

SLICEABLE_KINDS: dict[str, SourceKind] = {"scad": "scad", "stl": "stl", "3mf": "3mf"}


class NotSliceable(Exception):
    """The source is already printable (`gcode.3mf`, `gcode`): there is nothing to slice."""


def job_for(request: SlicePart) -> SliceJob:
    kind = SLICEABLE_KINDS.get(request.source.kind)
    if kind is None:
        raise NotSliceable(
            f"source.kind {request.source.kind!r} is already sliced; only scad, stl and 3mf are sliced"
        )
    return SliceJob(
        source_sha256=request.source.sha256,
        source_kind=kind,
        source_filename=request.source.filename,
        parameters=dict(request.parameters),
        printer_model=request.printer_model,
        fabmatic=request.fabmatic,
        material_type=request.material.type,
        material_color=request.material.color,
    )


def inputs_of(request: SlicePart) -> SliceInputs:
    return SliceInputs(
        source_sha256=request.source.sha256,
        source_kind=request.source.kind,
        source_filename=request.source.filename,
        parameters=dict(request.parameters),
        printer_model=request.printer_model,
        fabmatic=request.fabmatic,
        material_type=request.material.type,
        material_color=request.material.color,
    )


def completed(request: SlicePart, result: SliceResult, *, cached: bool, at: datetime) -> SliceCompleted:
    """Echoes the request's own fields (its `slice_key` above all); the file and estimate are the slice's."""
    return SliceCompleted(
        slice_key=request.slice_key,
        source_sha256=request.source.sha256,
        parameters=dict(request.parameters),
        printer_model=request.printer_model,
        fabmatic=request.fabmatic,
        material=_material(request),
        profile=result.profile,
        file=FileRef.model_validate(
            {
                "sha256": result.sha256,
                "filename": result.filename,
                "kind": result.kind,
                "size_bytes": result.size_bytes,
                "bucket": SLICED_FILES_BUCKET,
            }
        ),
        estimate=SliceEstimate(
            print_minutes=result.print_minutes,
            grams=result.grams,
            layers=result.layers,
            filament_mm=result.filament_mm,
        ),
        cached=cached,
        completed_at=at,
    )


def failed(request: SlicePart, failure: SliceFailure, *, at: datetime) -> SliceFailed:
    return SliceFailed(
        slice_key=request.slice_key,
        source_sha256=request.source.sha256,
        printer_model=request.printer_model,
        fabmatic=request.fabmatic,
        material=_material(request),
        stage=failure.stage,
        error=failure.error,
        failed_at=at,
    )


def cached_answer(request: SlicePart, answer: Answer, *, at: datetime) -> SliceCompleted | SliceFailed:
    """The answer a slice already done gives a new request: its file (`cached: true`) or its failure."""
    if answer.result is not None:
        return completed(request, answer.result, cached=True, at=at)
    return failed(request, answer.failure or SliceFailure("slice", "failed earlier without a message"), at=at)


def _material(request: SlicePart) -> Material:
    return Material(type=request.material.type, color=request.material.color, profile=request.material.profile)


def answer_id(request_id: str) -> str:
    """The answer's envelope id, derived from the request's: a redelivered request yields the same id
    (JetStream drops the duplicate), a new request for the same slice a new one.

    Shaped as a UUIDv7 with the request's timestamp, so answers still sort by time."""
    digest = int.from_bytes(hashlib.sha256(f"slicer-answer:{request_id}".encode()).digest()[:16], "big")
    try:
        parsed = uuid.UUID(request_id)
        millis = parsed.int >> 80 if parsed.version == 7 else digest >> 80
    except ValueError:
        millis = digest >> 80
    value = (millis & (2**48 - 1)) << 80
    value |= 0x7 << 76
    value |= (digest & 0xFFF) << 64
    value |= 0b10 << 62
    value |= (digest >> 12) & (2**62 - 1)
    return str(uuid.UUID(int=value))
