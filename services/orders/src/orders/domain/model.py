"""The order aggregate: line items, the job counts the queue reports, and the status derived from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from orders.domain.errors import (
    InvalidField,
    LineItemNotFound,
    NotClosable,
    NotPrintable,
    OrderClosed,
    OrderIsCancelled,
    UnprintableLineItem,
)
from orders.domain.parameters import SkuParameter

OrderStatus = Literal["open", "queued", "printing", "completed", "closed", "cancelled"]


@dataclass(frozen=True)
class MaterialGrams:
    type: str
    color: str | None
    grams: float


@dataclass(frozen=True)
class Sku:
    """The replica of one SKU as the skus service last published it (`deleted` kept for old orders)."""

    id: str
    sku: str
    name: str
    jobs_per_unit: int
    parameters: tuple[SkuParameter, ...] = ()
    materials: tuple[MaterialGrams, ...] = ()
    parts: tuple[Mapping[str, Any], ...] = ()
    revision: int = 0
    deleted: bool = False


@dataclass(frozen=True)
class JobCounts:
    """Order-facing job counts: `queued` includes slicing and assigned jobs, `printing` includes paused ones."""

    queued: int = 0
    printing: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.printing + self.completed + self.failed + self.cancelled


@dataclass(frozen=True)
class PartEstimate:
    """The queue's sliced figures for one part of a line item: sums over the `sliced_jobs` of its `jobs`."""

    part_id: str
    jobs: int
    sliced_jobs: int
    grams: float
    print_minutes: float


@dataclass
class LineItem:
    id: str
    sku_id: str
    quantity: int
    parameters: dict[str, Any]
    position: int
    jobs: JobCounts = field(default_factory=JobCounts)
    estimates: tuple[PartEstimate, ...] = ()


def job_count(quantity: int, sku: Sku | None) -> int:
    return quantity * sku.jobs_per_unit if sku is not None else 0


@dataclass(frozen=True)
class OrderLimits:
    """How large one order may be. Each job becomes a row in the queue and a line in a message, so an
    unbounded order (10,000 line items x 1,000,000 copies) would be a denial of service, not a sale."""

    max_jobs: int = 100_000
    max_line_items: int = 5_000
    max_quantity: int = 100_000

    def check_line_count(self, count: int) -> None:
        if count > self.max_line_items:
            raise InvalidField("line_items", f"{count} line items; an order holds at most {self.max_line_items}")

    def check_quantity(self, field: str, quantity: int) -> None:
        if quantity > self.max_quantity:
            raise InvalidField(field, f"{quantity} copies; a line item asks for at most {self.max_quantity}")

    def check_jobs(self, line_items: Iterable[LineItem], skus: Mapping[str, Sku]) -> None:
        jobs = sum(job_count(li.quantity, skus.get(li.sku_id)) for li in line_items)
        if jobs > self.max_jobs:
            raise InvalidField(
                "line_items", f"the order would make {jobs} print jobs; one order makes at most {self.max_jobs}"
            )


def line_item_complete(expected_jobs: int, jobs: JobCounts) -> bool:
    """Every job of the line item is completed: none waiting, printing or failed (a failed job blocks
    until it is retried and completes, or its line item is removed)."""
    return (
        expected_jobs > 0
        and jobs.completed >= expected_jobs
        and jobs.queued == 0
        and jobs.printing == 0
        and jobs.failed == 0
    )


def order_complete(line_items: Iterable[tuple[int, JobCounts]]) -> bool:
    """The green check: at least one line item, and every current line item is complete."""
    items = list(line_items)
    return bool(items) and all(line_item_complete(expected, jobs) for expected, jobs in items)


def derive_status(*, cancelled: bool, closed: bool, sent: bool, complete: bool, printing: int) -> OrderStatus:
    if closed:
        return "closed"
    if cancelled:
        return "cancelled"
    if not sent:
        return "open"
    if complete:
        return "completed"
    if printing > 0:
        return "printing"
    return "queued"


def _sliced_line_grams(li: LineItem, sku: Sku) -> list[tuple[tuple[str, str | None], float]]:
    sliced = {e.part_id: e for e in li.estimates}
    out = []
    for part in sku.parts:
        material = part.get("material") or {}
        copies = int(part.get("quantity") or 1) * li.quantity
        declared = float(part.get("grams") or 0.0)
        estimate = sliced.get(str(part.get("part_id")))
        if estimate is None:
            weight = declared * copies
        else:
            weight = estimate.grams + declared * max(copies - estimate.sliced_jobs, 0)
        out.append(((str(material.get("type")), material.get("color")), weight))
    return out


@dataclass(frozen=True)
class SkuLine:
    sku_id: str
    sku: str | None
    quantity: int
    jobs_per_unit: int
    job_count: int


def sku_breakdown(line_items: Iterable[LineItem], skus: Mapping[str, Sku]) -> list[SkuLine]:
    """Quantities and jobs per SKU, in the order the SKUs first appear in the order."""
    totals: dict[str, int] = {}
    for li in line_items:
        totals[li.sku_id] = totals.get(li.sku_id, 0) + li.quantity
    out = []
    for sku_id, quantity in totals.items():
        sku = skus.get(sku_id)
        per_unit = sku.jobs_per_unit if sku is not None else 0
        out.append(SkuLine(sku_id, sku.sku if sku else None, quantity, per_unit, quantity * per_unit))
    return out


def material_totals(line_items: Iterable[LineItem], skus: Mapping[str, Sku]) -> list[MaterialGrams]:
    """Filament the order needs: each SKU's per-unit materials times the line's quantity, except that a
    part the queue has sliced counts the slicer's grams for its sliced jobs (the part's declared grams
    for the copies not sliced yet): an OpenSCAD or mesh part declares no weight, its slice knows it."""
    grams: dict[tuple[str, str | None], float] = {}
    for li in line_items:
        sku = skus.get(li.sku_id)
        if sku is None:
            continue
        if li.estimates and sku.parts:
            for (t, c), g in _sliced_line_grams(li, sku):
                grams[(t, c)] = grams.get((t, c), 0.0) + g
            continue
        for m in sku.materials:
            key = (m.type, m.color)
            grams[key] = grams.get(key, 0.0) + m.grams * li.quantity
    return [
        MaterialGrams(t, c, round(g, 3))
        for (t, c), g in sorted(grams.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]


@dataclass(frozen=True)
class Forecast:
    """The queue's forecast of an order (`queue.v1.order.forecast_changed`); newer `generated_at` wins."""

    generated_at: datetime
    completes_at: datetime | None
    late: bool
    blocked_by: str | None = None


@dataclass
class Order:
    id: str
    order_number: str
    created_at: datetime
    updated_at: datetime
    customer_name: str | None = None
    customer_email: str | None = None
    fulfillment_date: date | None = None
    notes: str | None = None
    line_items: list[LineItem] = field(default_factory=list)
    status: OrderStatus = "open"
    is_complete: bool = False
    cancelled: bool = False
    closed: bool = False
    print_revision: int = 0
    revision: int = 1
    jobs: JobCounts = field(default_factory=JobCounts)
    summary_sequence: int = 0
    queue_print_revision: int = 0
    assignment: dict[str, Any] | None = None
    completed_at: datetime | None = None
    forecast: Forecast | None = None
    """Kept beside the order, not in its row: saving the order never writes it."""

    def current_forecast(self) -> Forecast | None:
        """What the order's `forecast` says now: the queue's while jobs are open; once none is, the
        completion itself, or the failed jobs that stop it (they wait for an operator's retry)."""
        if self.jobs.queued + self.jobs.printing > 0:
            return self.forecast
        due = (
            datetime.combine(self.fulfillment_date, time.min, UTC) + timedelta(days=1)
            if self.fulfillment_date is not None
            else None
        )
        if self.is_complete and self.completed_at is not None:
            late = due is not None and self.completed_at > due
            return Forecast(self.completed_at, self.completed_at, late)
        if self.jobs.failed > 0:
            jobs = "job waits" if self.jobs.failed == 1 else "jobs wait"
            return Forecast(self.updated_at, None, due is not None, f"{self.jobs.failed} failed {jobs} for a retry")
        return None

    # -- guards -----------------------------------------------------------------------------------

    def ensure_open_for_changes(self) -> None:
        if self.closed:
            raise OrderClosed(self.id)

    def ensure_printable_state(self, action: str) -> None:
        self.ensure_open_for_changes()
        if self.cancelled:
            raise OrderIsCancelled(self.id, action)

    # -- reads ------------------------------------------------------------------------------------

    def line_item(self, line_item_id: str) -> LineItem:
        for li in self.line_items:
            if li.id == line_item_id:
                return li
        raise LineItemNotFound(self.id, line_item_id)

    def job_count(self, skus: Mapping[str, Sku]) -> int:
        return sum(job_count(li.quantity, skus.get(li.sku_id)) for li in self.line_items)

    def sku_ids(self) -> list[str]:
        return sorted({li.sku_id for li in self.line_items})

    # -- changes ----------------------------------------------------------------------------------

    def update_details(self, changes: Mapping[str, Any], now: datetime) -> bool:
        """Apply the header fields that differ; True when anything changed."""
        self.ensure_open_for_changes()
        allowed = {"order_number", "customer_name", "customer_email", "fulfillment_date", "notes"}
        changed = False
        for name, value in changes.items():
            if name not in allowed:
                raise InvalidField(name, "cannot be changed")
            if getattr(self, name) != value:
                setattr(self, name, value)
                changed = True
        if changed:
            self.touch(now)
        return changed

    def check_size(self, skus: Mapping[str, Sku], limits: OrderLimits) -> None:
        """Refuse the order as it now stands if it is larger than one order may be."""
        limits.check_line_count(len(self.line_items))
        limits.check_jobs(self.line_items, skus)

    def add_line_item(self, item: LineItem, now: datetime) -> None:
        self.ensure_printable_state("add line items")
        item.position = max((li.position for li in self.line_items), default=-1) + 1
        self.line_items.append(item)
        self.touch(now)

    def change_line_item(
        self, line_item_id: str, *, sku_id: str, quantity: int, parameters: dict[str, Any], now: datetime
    ) -> None:
        self.ensure_printable_state("change line items")
        li = self.line_item(line_item_id)
        if li.sku_id != sku_id:
            li.jobs = JobCounts()
        li.sku_id, li.quantity, li.parameters = sku_id, quantity, parameters
        self.touch(now)

    def remove_line_item(self, line_item_id: str, now: datetime) -> None:
        self.ensure_printable_state("remove line items")
        li = self.line_item(line_item_id)
        self.line_items.remove(li)
        self.touch(now)

    def request_print(self, skus: Mapping[str, Sku], assignment: dict[str, Any] | None, now: datetime) -> int:
        """Check every line item can be printed, then move to the next print revision."""
        self.ensure_printable_state("send print jobs")
        problems = [
            UnprintableLineItem(li.id, index, reason)
            for index, li in enumerate(self.line_items)
            if (reason := unprintable_reason(skus.get(li.sku_id))) is not None
        ]
        if problems:
            raise NotPrintable(self.id, problems)
        if assignment is not None:
            self.assignment = assignment
        self.print_revision += 1
        self.touch(now)
        return self.print_revision

    def cancel(self, now: datetime) -> bool:
        """True when the queue has to be told (the order was sent before)."""
        self.ensure_open_for_changes()
        if self.cancelled:
            return False
        self.cancelled = True
        sent = self.print_revision > 0
        if sent:
            self.print_revision += 1
        self.touch(now)
        return sent

    def close(self, now: datetime) -> None:
        if self.closed:
            return
        if not (self.is_complete or self.cancelled):
            raise NotClosable(self.id, f"it is {self.status}; only a complete or cancelled order can be closed")
        self.closed = True
        self.touch(now)

    def apply_job_summary(
        self,
        sequence: int,
        per_line_item: Mapping[str, JobCounts],
        totals: JobCounts,
        now: datetime,
        print_revision: int = 0,
        estimates: Mapping[str, tuple[PartEstimate, ...]] | None = None,
    ) -> bool:
        """Take the queue's counts if they are newer than the ones held; True when anything changed.
        `print_revision` is the request the queue had applied, so clients can see it caught up."""
        if sequence <= self.summary_sequence:
            return False
        self.summary_sequence = sequence
        changed = totals != self.jobs or print_revision != self.queue_print_revision
        self.queue_print_revision = print_revision
        self.jobs = totals
        for li in self.line_items:
            counts = per_line_item.get(li.id, JobCounts())
            if counts != li.jobs:
                li.jobs, changed = counts, True
            sliced = (estimates or {}).get(li.id, ())
            if sliced != li.estimates:
                li.estimates, changed = sliced, True
        if changed:
            self.touch(now)
        return changed

    def touch(self, now: datetime) -> None:
        self.revision += 1
        self.updated_at = now

    def refresh_status(self, skus: Mapping[str, Sku], now: datetime) -> bool:
        """Derive status and completeness again; True when the order has just become complete."""
        was_complete = self.is_complete
        self.is_complete = order_complete(
            (job_count(li.quantity, skus.get(li.sku_id)), li.jobs) for li in self.line_items
        )
        self.status = derive_status(
            cancelled=self.cancelled,
            closed=self.closed,
            sent=self.print_revision > 0,
            complete=self.is_complete,
            printing=self.jobs.printing,
        )
        became_complete = self.is_complete and not was_complete
        if became_complete:
            self.completed_at = now
        elif not self.is_complete:
            self.completed_at = None
        return became_complete


def unprintable_reason(sku: Sku | None) -> str | None:
    if sku is None:
        return "its SKU is unknown"
    if sku.deleted:
        return f"SKU {sku.sku} was deleted"
    if not sku.parts:
        return f"SKU {sku.sku} has no parts"
    return None
