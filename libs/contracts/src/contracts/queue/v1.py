"""queue.v1: print jobs, per-order job counts, and commands to printer gateways."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from contracts.envelope import ContractMessage
from contracts.shared_values import Assignment, FileRef, Frozen, Material

JobStatus = Literal["queued", "slicing", "assigned", "printing", "paused", "completed", "failed", "cancelled"]
JobPriority = Literal["normal", "low"]


class JobFile(Frozen):
    """The file a job prints once known: the part's own (pre-sliced) or the slice made for the
    printer it was assigned to (`profile` then names the slicer profile)."""

    kind: str
    sha256: str
    profile: str | None = None
    print_minutes: float | None = None
    grams: float | None = None


class JobChanged(ContractMessage):
    """Full state of one job after a change; newer `revision` wins."""

    SUBJECT: ClassVar[str] = "queue.v1.job.changed"

    id: str
    order_id: str
    order_number: str
    line_item_id: str
    sku_id: str
    part_id: str
    part_name: str
    copy_number: int
    status: JobStatus
    printer_id: str | None = None
    material: Material
    parameters: dict[str, Any] = {}
    assignment: Assignment
    priority: JobPriority = "normal"
    progress_percent: float = 0.0
    error: str | None = None
    file: JobFile | None = None
    revision: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobCounts(Frozen):
    """Order-facing counts: `queued` includes assigned, `printing` includes paused."""

    queued: int = 0
    printing: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


class PartEstimate(Frozen):
    """The slicer's figures for one part of a line item that needs slicing (OpenSCAD, STL, 3MF mesh),
    summed over the part's current jobs that are not cancelled and whose slice is known."""

    part_id: str
    jobs: int
    """Current, not cancelled jobs of the part (copies of every unit)."""
    sliced_jobs: int
    """Of those, the jobs with a sliced estimate: `grams` and `print_minutes` sum over these only."""
    grams: float = 0.0
    print_minutes: float = 0.0


class OrderJobsSummarized(ContractMessage):
    """Job counts of one order per line item after a change; newer `sequence` wins (state transfer).

    Also sent when a job's sliced estimate changes, so `estimates` (per line item id, the parts that
    need slicing) always holds the figures of the newest summary."""

    SUBJECT: ClassVar[str] = "queue.v1.order.jobs_summarized"

    order_id: str
    sequence: int
    print_revision: int
    added: int = 0
    cancelled: int = 0
    kept: int = 0
    line_items: dict[str, JobCounts]
    totals: JobCounts
    estimates: dict[str, list[PartEstimate]] = {}


class OrderForecastChanged(ContractMessage):
    """The queue's production forecast of one order that has open jobs; newer `generated_at` wins.

    Published when the forecast moves (an end time by more than the queue's tolerance, `late` or
    `blocked_by`), so the orders service can answer with it without reading the queue's database."""

    SUBJECT: ClassVar[str] = "queue.v1.order.forecast_changed"

    order_id: str
    generated_at: datetime
    completes_at: datetime | None = None
    """When the order's last open job is expected to end; None while something blocks it."""
    late: bool = False
    blocked_by: str | None = None


class StartPrint(ContractMessage):
    """Ask the printer gateway that owns `printer_id` to print `job_id` (the dispatch)."""

    SUBJECT: ClassVar[str] = "queue.v1.cmd.start_print"

    command_id: str
    job_id: str
    printer_id: str
    order_number: str
    part_name: str
    file: FileRef
    material: Material
    parameters: dict[str, Any] = {}
    attempt: int = 1
    fulfillment_date: date | None = None
    deadline_seconds: float = 600.0
    issued_at: datetime
    slots: list[int] = []
    """The printer's slots the queue judged to hold `material` (within the farm's colour tolerance), so the
    gateway feeds from one of them rather than asking for the exact colour again; empty: the gateway picks."""


class SlicePart(ContractMessage):
    """Ask a slicer replica to make `source` printable on `printer_model` in `material`.

    `slice_key` is the requester's correlation key for these inputs (stable: the same source,
    parameters, model, FabMatic flag and material give the same key); the answer echoes it.
    """

    SUBJECT: ClassVar[str] = "queue.v1.cmd.slice_part"

    slice_key: str
    source: FileRef
    parameters: dict[str, Any] = {}
    printer_model: str
    fabmatic: bool = False
    material: Material
    requested_at: datetime


class StopPrint(ContractMessage):
    """Stop `job_id` on `printer_id` (operator cancel of a printing job)."""

    SUBJECT: ClassVar[str] = "queue.v1.cmd.stop_print"

    command_id: str
    job_id: str
    printer_id: str
    issued_at: datetime
