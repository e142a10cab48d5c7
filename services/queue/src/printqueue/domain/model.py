"""The queue's model: print jobs, the orders they belong to, and the replica of printers they run on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from contracts.colours import canonical_color

JobStatus = Literal["queued", "slicing", "assigned", "printing", "paused", "completed", "failed", "cancelled"]
Priority = Literal["normal", "low"]
AssignmentMode = Literal["next_available", "printer", "tags"]

ACTIVE: frozenset[str] = frozenset({"assigned", "printing", "paused"})
"""A job in one of these states occupies its printer."""
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
"""Sticky: only an operator's retry leaves them."""
NOT_STARTED: frozenset[str] = frozenset({"queued", "slicing", "assigned"})
"""What reconciliation and order cancellation may still cancel."""
WAITING: frozenset[str] = frozenset({"queued", "slicing"})
"""Waiting for a printer (or for the file a printer needs): what the queue's material plan counts."""

Identity = tuple[str, str, int]
"""(line_item_id, part_id, copy_number): a job's identity within its order."""
Target = tuple[str, bool]
"""(printer model, FabMatic): what a sliced file is made for."""

def rgb(color: str | None) -> str | None:
    """The contracts' canonical colour without its `#` (`RRGGBB`): colours compare by RGB, alpha ignored.
    Text that is no hex colour stays itself (upper case), so it matches only the same text."""
    if not color:
        return None
    canonical = canonical_color(color)
    return canonical[1:] if canonical is not None else color.strip().upper()


MAX_COLOR_TOLERANCE = 100.0
"""CIEDE2000 ΔE between sRGB colours stays below about 120; past 100 every spool of a type would match."""


@dataclass(frozen=True)
class FarmSettings:
    """What the operator sets for the whole farm's matching."""

    color_tolerance: float = 0.0
    """How far (CIEDE2000 ΔE) a loaded spool's colour may be from a job's and still match; 0: exact."""


@dataclass(frozen=True)
class Material:
    type: str
    color: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class Assignment:
    """Which printers may take a job: any, one specific printer, or any printer carrying all the tags."""

    mode: AssignmentMode = "next_available"
    printer_id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(slots=True)
class Job:
    id: str
    order_id: str
    order_number: str
    line_item_id: str
    line_position: int
    sku_id: str
    sku: str
    part_id: str
    part_index: int
    part_name: str
    copy_number: int
    material: Material
    parameters: dict[str, Any]
    file: dict[str, Any]
    assignment: Assignment
    order_created_at: datetime
    created_at: datetime
    updated_at: datetime
    fulfillment_date: date | None = None
    grams: float | None = None
    print_minutes: float | None = None
    priority: Priority = "normal"
    status: JobStatus = "queued"
    wanted: bool = True
    """False once the order no longer asks for this identity (it was printing or done then)."""
    printer_id: str | None = None
    progress_percent: float = 0.0
    error: str | None = None
    revision: int = 1
    attempt: int = 1
    """1 + operator retries."""
    dispatch_attempts: int = 0
    """Dispatches of the current attempt; bounded, then the job fails."""
    command_id: str | None = None
    dispatch_deadline: datetime | None = None
    last_sequence: int = 0
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    slice_basis: str | None = None
    """For a part that must be sliced: the hash of the slicing inputs other than the printer model
    (source, parameter values, material). Every slice this job can print shares it."""
    sliced_file: dict[str, Any] | None = None
    """The slice the job was dispatched with, or the best known one while it waits (`SliceChoice.view`)."""

    @property
    def identity(self) -> Identity:
        return (self.line_item_id, self.part_id, self.copy_number)

    @property
    def live(self) -> bool:
        return self.status != "cancelled"

    def touch(self, now: datetime) -> None:
        """Every visible change bumps the revision consumers order JobChanged by."""
        self.revision += 1
        self.updated_at = now


@dataclass
class OrderRecord:
    """What the queue remembers of an order: the newest print revision it applied, and its summary sequence."""

    order_id: str
    order_number: str = ""
    applied_revision: int = 0
    cancelled: bool = False
    summary_sequence: int = 0


@dataclass(frozen=True)
class LoadedMaterial:
    slot: int
    type: str
    color: str | None = None
    profile: str | None = None


@dataclass
class Printer:
    """The queue's replica of a printer (from PrinterChanged) plus its own dispatch notes about it."""

    id: str
    name: str
    revision: int
    model: str = ""
    protocol: str = "bambu_lan"
    """How the gateway drives it (`bambu_lan`, `moonraker`, `octoprint`, `prusalink`): which pre-sliced
    files it can print (`matching.printer_family`)."""
    tags: tuple[str, ...] = ()
    fabmatic: bool = False
    online: bool = False
    state: str = "offline"
    bed_clear: bool = False
    materials: tuple[LoadedMaterial, ...] = ()
    current_job_id: str | None = None
    idle_since: datetime | None = None
    deleted: bool = False
    avoid_until: datetime | None = None
    """Set when a dispatch to it was never started: the matcher leaves it alone until then."""
    dispatch_misses: int = 0
    updated_at: datetime | None = None


@dataclass
class JobCounts:
    """Order-facing counts: `queued` includes slicing and assigned, `printing` includes paused."""

    queued: int = 0
    printing: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    def add(self, status: str, count: int = 1) -> None:
        bucket = count_bucket(status)
        setattr(self, bucket, getattr(self, bucket) + count)


def count_bucket(status: str) -> str:
    return {"assigned": "queued", "slicing": "queued", "paused": "printing"}.get(status, status)


@dataclass
class PartEstimate:
    """The slicer's figures for one part of a line item, over its current jobs that are not cancelled."""

    part_id: str
    jobs: int = 0
    sliced_jobs: int = 0
    grams: float = 0.0
    print_minutes: float = 0.0

    def add(self, job: Job) -> None:
        self.jobs += 1
        sliced = job.sliced_file or {}
        if sliced.get("grams") is not None:
            self.sliced_jobs += 1
            self.grams += float(sliced["grams"])
            self.print_minutes += float(sliced.get("print_minutes") or 0.0)


@dataclass
class OrderSummary:
    line_items: dict[str, JobCounts] = field(default_factory=dict)
    totals: JobCounts = field(default_factory=JobCounts)
    estimates: dict[str, list[PartEstimate]] = field(default_factory=dict)
    """Per line item, the parts that need slicing (sorted by part id)."""


def summarize(jobs: list[Job]) -> OrderSummary:
    """Counts of the current job of every identity: a cancelled job replaced by a newer one is history."""
    current: dict[Identity, Job] = {}
    for job in jobs:
        seen = current.get(job.identity)
        if seen is None or _supersedes(job, seen):
            current[job.identity] = job
    summary = OrderSummary()
    parts: dict[tuple[str, str], PartEstimate] = {}
    for job in current.values():
        summary.line_items.setdefault(job.line_item_id, JobCounts()).add(job.status)
        summary.totals.add(job.status)
        if job.slice_basis is not None and job.status != "cancelled":
            key = (job.line_item_id, job.part_id)
            parts.setdefault(key, PartEstimate(job.part_id)).add(job)
    for (line_item_id, _), estimate in sorted(parts.items()):
        summary.estimates.setdefault(line_item_id, []).append(estimate)
    return summary


def _supersedes(job: Job, other: Job) -> bool:
    if job.live != other.live:
        return job.live
    return (job.created_at, job.id) > (other.created_at, other.id)
