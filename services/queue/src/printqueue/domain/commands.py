"""What the queue is asked to do: one command per write use case, with the inputs it needs (domain values;
`service_layer.messages` builds them from contract messages, the routes from requests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from printqueue.domain.forecast import OrderForecast
from printqueue.domain.lifecycle import PrintReport
from printqueue.domain.model import FarmSettings, Printer, Priority
from printqueue.domain.reconciliation import DesiredOrder


@dataclass(frozen=True)
class ReconcileOrder:
    """The order's print request (OrderPrintRequested): its jobs become what it wants now."""

    desired: DesiredOrder


@dataclass(frozen=True)
class CancelOrder:
    """The order was cancelled (OrderCancelled) at `print_revision`."""

    order_id: str
    print_revision: int


@dataclass(frozen=True)
class RecordPrinter:
    """A printer as its gateway reports it (PrinterChanged); the queue's own dispatch notes are not in it."""

    printer: Printer


@dataclass(frozen=True)
class ApplyPrintReport:
    """A printer's report on a job it prints (PrintUpdated)."""

    report: PrintReport


@dataclass(frozen=True)
class CompleteSlice:
    """The slicer made the slice `slice_key` (SliceCompleted)."""

    slice_key: str
    file: dict[str, Any]
    profile: str
    print_minutes: float
    grams: float


@dataclass(frozen=True)
class FailSlice:
    """The slicer could not make the slice `slice_key` (SliceFailed)."""

    slice_key: str
    error: str
    stage: str


@dataclass(frozen=True)
class AdoptUnslicedJobs:
    """At start: waiting jobs queued before the queue sliced parts get their slicing inputs."""


@dataclass(frozen=True)
class RunMatchingPass:
    """Expire overdue dispatches; with `assign`, also give queued jobs to ready printers (the matching loop:
    woken, or its full pass on the timer)."""

    assign: bool = True


@dataclass(frozen=True)
class ChaseUnansweredSlices:
    """Ask the slicer again for slices waited on too long (the matching loop, beside its full passes)."""


@dataclass(frozen=True)
class PublishForecasts:
    """Tell the orders service the forecasts that moved (the forecast loop)."""

    orders: tuple[OrderForecast, ...]
    generated_at: datetime


@dataclass(frozen=True)
class CancelJob:
    job_id: str


@dataclass(frozen=True)
class RetryJob:
    job_id: str


@dataclass(frozen=True)
class RejectJob:
    """An operator rejects a completed print: the job fails."""

    job_id: str


@dataclass(frozen=True)
class SetJobPriority:
    job_id: str
    priority: Priority


@dataclass(frozen=True)
class SetFarmSettings:
    settings: FarmSettings
