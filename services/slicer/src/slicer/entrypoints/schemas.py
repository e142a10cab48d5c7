"""What operators read about slices over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from slicer.domain.model import Slice


class SliceFileOut(BaseModel):
    bucket: str
    sha256: str
    filename: str
    kind: str
    size_bytes: int


class SliceOut(BaseModel):
    key: str
    state: str
    source_sha256: str
    source_kind: str
    source_filename: str
    parameters: dict[str, Any]
    printer_model: str
    fabmatic: bool
    material: dict[str, str | None]
    profile: str | None
    file: SliceFileOut | None
    estimate: dict[str, float | int | None] | None
    failure: dict[str, str] | None
    claim_owner: str | None
    lease_expires_at: datetime | None
    attempts: int
    last_error: str | None
    slice_seconds: float | None
    created_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, item: Slice, bucket: str) -> SliceOut:
        result, failure, inputs = item.result, item.failure, item.inputs
        return cls(
            key=item.key,
            state=item.state,
            source_sha256=inputs.source_sha256,
            source_kind=inputs.source_kind,
            source_filename=inputs.source_filename,
            parameters=inputs.parameters,
            printer_model=inputs.printer_model,
            fabmatic=inputs.fabmatic,
            material={"type": inputs.material_type, "color": inputs.material_color},
            profile=result.profile if result else None,
            file=SliceFileOut(
                bucket=bucket,
                sha256=result.sha256,
                filename=result.filename,
                kind=result.kind,
                size_bytes=result.size_bytes,
            )
            if result
            else None,
            estimate={
                "print_minutes": result.print_minutes,
                "grams": result.grams,
                "layers": result.layers,
                "filament_mm": result.filament_mm,
            }
            if result
            else None,
            failure={"stage": failure.stage, "error": failure.error} if failure else None,
            claim_owner=item.claim_owner,
            lease_expires_at=item.lease_expires_at,
            attempts=item.attempts,
            last_error=item.last_error,
            slice_seconds=item.slice_seconds,
            created_at=item.created_at,
            updated_at=item.updated_at,
            finished_at=item.finished_at,
        )
