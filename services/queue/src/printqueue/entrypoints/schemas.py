"""HTTP shapes of the queue (API.md, "Print queue")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from printqueue.domain.model import MAX_COLOR_TOLERANCE, Job
from printqueue.domain.slicing import job_file


class MaterialOut(BaseModel):
    type: str
    color: str | None = None
    profile: str | None = None


class JobFileOut(BaseModel):
    """The file the job prints: the part's own, or the slice made for its printer's model."""

    kind: str
    sha256: str
    profile: str | None = None
    print_minutes: float | None = None
    grams: float | None = None


class AssignmentOut(BaseModel):
    mode: str
    printer_id: str | None = None
    tags: list[str] = []


class JobOut(BaseModel):
    id: str
    order_id: str
    order_number: str
    line_item_id: str
    sku_id: str
    sku: str
    part_id: str
    part_name: str
    copy_number: int = Field(serialization_alias="copy")
    status: str
    printer_id: str | None
    material: MaterialOut
    parameters: dict[str, Any]
    assignment: AssignmentOut
    priority: str
    progress_percent: float
    error: str | None
    cancel_requested: bool
    attempt: int
    dispatch_attempts: int
    grams: float | None
    print_minutes: float | None
    file: JobFileOut | None
    fulfillment_date: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    revision: int

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            order_id=job.order_id,
            order_number=job.order_number,
            line_item_id=job.line_item_id,
            sku_id=job.sku_id,
            sku=job.sku,
            part_id=job.part_id,
            part_name=job.part_name,
            copy_number=job.copy_number,
            status=job.status,
            printer_id=job.printer_id,
            material=MaterialOut(type=job.material.type, color=job.material.color, profile=job.material.profile),
            parameters=job.parameters,
            assignment=AssignmentOut(
                mode=job.assignment.mode, printer_id=job.assignment.printer_id, tags=list(job.assignment.tags)
            ),
            priority=job.priority,
            progress_percent=job.progress_percent,
            error=job.error,
            cancel_requested=job.cancel_requested,
            attempt=job.attempt,
            dispatch_attempts=job.dispatch_attempts,
            grams=job.grams,
            print_minutes=job.print_minutes,
            file=JobFileOut.model_validate(view) if (view := job_file(job)) is not None else None,
            fulfillment_date=job.fulfillment_date.isoformat() if job.fulfillment_date else None,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            revision=job.revision,
        )


class JobPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: Literal["normal", "low"]


class MatchingItem(BaseModel):
    printer_id: str
    printer_name: str
    result: str
    detail: str | None = None
    """For `file_mismatch` and `slicing`: which model's file is missing, being made, or failed and why; for
    `material_mismatch` of a colour: how far the closest spool is."""
    color_distance: float | None = Field(
        default=None,
        description="CIEDE2000 ΔE from the job's colour to this printer's closest spool of the job's material "
        "type (0: the same colour); null when the job names no colour or no such spool has a hex colour.",
    )


class MatchingOut(BaseModel):
    job_id: str
    status: str
    color_tolerance: float = Field(description="The farm's colour tolerance (ΔE) the verdicts were made with.")
    items: list[MatchingItem]


class FarmSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    color_tolerance: float = Field(
        ge=0,
        le=MAX_COLOR_TOLERANCE,
        description="How far (CIEDE2000 ΔE) a loaded spool's colour may be from a job's and still match: 0 "
        "matches the exact colour only; about 1 is a just-noticeable difference, 2-5 a close shade.",
    )


class FarmSettingsOut(BaseModel):
    color_tolerance: float = Field(description="CIEDE2000 ΔE; 0: exact colour matching (the default).")


class LoadedSlotOut(BaseModel):
    printer_id: str
    slot: int


class MaterialDemandOut(BaseModel):
    type: str
    color: str | None
    jobs_waiting: int
    grams_waiting: float
    printers_loaded: list[str]
    slots_loaded: list[LoadedSlotOut] = Field(
        default=[],
        description="Each loaded spool that serves these jobs (the colour within the farm's tolerance).",
    )


class MaterialsOut(BaseModel):
    items: list[MaterialDemandOut]


class AnalyticsBucketOut(BaseModel):
    start: datetime = Field(description="Start of the UTC hour (period 24h) or day (7d, 30d).")
    completed: int = Field(ge=0, description="Jobs completed in this bucket.")
    failed: int = Field(ge=0, description="Jobs failed in this bucket (and still failed).")
    grams: dict[str, float] = Field(description="Grams of filament by material type used by the completed jobs.")


class FailureReasonOut(BaseModel):
    reason: str
    count: int = Field(ge=1)


class QueueWaitOut(BaseModel):
    jobs: int = Field(ge=0, description="Jobs started in the window.")
    average_seconds: float | None = Field(description="Mean time from the click that made a job to its start.")
    max_seconds: float | None


class OrderLeadTimeOut(BaseModel):
    order_id: str
    order_number: str
    clicked_at: datetime = Field(description="When the queue made the order's first live job (the click).")
    completed_at: datetime = Field(description="When the order's last job completed.")
    seconds: float = Field(ge=0)


class JobAnalyticsOut(BaseModel):
    period: Literal["24h", "7d", "30d"]
    since: datetime
    until: datetime
    bucket: Literal["hour", "day"]
    series: list[AnalyticsBucketOut]
    completed: int = Field(ge=0)
    failed: int = Field(ge=0)
    grams: dict[str, float] = Field(description="Grams by material type over the whole window.")
    failure_reasons: list[FailureReasonOut] = Field(description="Most frequent first; the tail summed as `other`.")
    queue_wait: QueueWaitOut
    orders: list[OrderLeadTimeOut] = Field(description="Orders completed in the window, newest first (at most 200).")
    average_click_to_complete_seconds: float | None
