"""Reconciling an order's jobs with its whole desired print state (state transfer with a revision).

Applying the same state twice, or an older revision after a newer one, changes nothing. A job's
identity is (line item, part, copy number); a started or finished job is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from printqueue.domain.model import NOT_STARTED, WAITING, Assignment, Identity, Job, Material, OrderRecord


@dataclass(frozen=True)
class DesiredPart:
    part_id: str
    part_name: str
    quantity: int
    material: Material
    file: dict[str, Any]
    parameter_values: dict[str, Any] = field(default_factory=dict)
    grams: float | None = None
    print_minutes: float | None = None


@dataclass(frozen=True)
class DesiredLineItem:
    line_item_id: str
    position: int
    sku_id: str
    sku: str
    quantity: int
    parameters: dict[str, Any]
    parts: Sequence[DesiredPart]


@dataclass(frozen=True)
class DesiredOrder:
    order_id: str
    order_number: str
    print_revision: int
    assignment: Assignment
    order_created_at: datetime
    line_items: Sequence[DesiredLineItem]
    fulfillment_date: date | None = None


@dataclass(frozen=True)
class DesiredJob:
    """One job the order wants: everything a new job is made of."""

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
    grams: float | None
    print_minutes: float | None

    @property
    def identity(self) -> Identity:
        return (self.line_item_id, self.part_id, self.copy_number)


def desired_jobs(line_items: Sequence[DesiredLineItem]) -> list[DesiredJob]:
    """Line quantity × part quantity copies of each part. Copies are numbered per (line item, part),
    continuing across repeated entries of one part, so identities never collide."""
    return [
        replace(head, copy_number=copy) for head, last in _desired_heads(line_items)
        for copy in range(head.copy_number, last + 1)
    ]


def _desired_heads(line_items: Sequence[DesiredLineItem]) -> Iterator[tuple[DesiredJob, int]]:
    """`desired_jobs` as (its first copy, its last copy number) per part entry of a line: the copies differ in
    their number only, and a 20,000-job order needs no 20,000 `DesiredJob`s to say so."""
    for line in line_items:
        next_copy: dict[str, int] = {}
        for index, part in enumerate(line.parts):
            copies = max(line.quantity, 0) * max(part.quantity, 0)
            if copies == 0:
                continue
            first = next_copy.get(part.part_id, 0) + 1
            next_copy[part.part_id] = first + copies - 1
            head = DesiredJob(
                line_item_id=line.line_item_id,
                line_position=line.position,
                sku_id=line.sku_id,
                sku=line.sku,
                part_id=part.part_id,
                part_index=index,
                part_name=part.part_name,
                copy_number=first,
                material=part.material,
                parameters={**line.parameters, **part.parameter_values},
                file=part.file,
                grams=part.grams,
                print_minutes=part.print_minutes,
            )
            yield head, first + copies - 1


@dataclass
class Reconciliation:
    order: OrderRecord
    added: list[Job] = field(default_factory=list)
    cancelled: list[Job] = field(default_factory=list)
    kept: int = 0
    changed: list[Job] = field(default_factory=list)
    """Jobs whose visible state changed (added ones included): each becomes a JobChanged."""
    dirty: list[Job] = field(default_factory=list)
    """Existing jobs to save (visible change or only the internal `wanted` flag)."""
    stops: list[Job] = field(default_factory=list)
    """Cancelled jobs that had been dispatched: their printer is told to drop them."""


def reconcile_order_jobs(
    order: OrderRecord | None,
    jobs: Sequence[Job],
    desired: DesiredOrder,
    now: datetime,
    new_id: Callable[[], str],
) -> Reconciliation | None:
    """None when `desired` is not newer than what was applied (duplicate or late message)."""
    if order is not None and desired.print_revision <= order.applied_revision:
        return None
    record = replace(order) if order is not None else OrderRecord(order_id=desired.order_id)
    record.order_number = desired.order_number
    record.applied_revision = desired.print_revision
    record.cancelled = False
    result = Reconciliation(order=record)

    live: dict[Identity, Job] = {job.identity: job for job in jobs if job.live}
    wanted: set[Identity] = set()
    for want, last in _desired_heads(desired.line_items):
        line_item_id, part_id = want.line_item_id, want.part_id
        for copy in range(want.copy_number, last + 1):
            identity = (line_item_id, part_id, copy)
            if identity in wanted:
                continue
            wanted.add(identity)
            job = live.get(identity)
            if job is None:
                job = _new_job(desired, want, copy, now, new_id())
                result.added.append(job)
                result.changed.append(job)
                continue
            result.kept += 1
            visible = job.status in WAITING and _refresh(job, desired, want)
            if visible:
                job.touch(now)
                result.changed.append(job)
            if visible or not job.wanted:
                job.wanted = True
                result.dirty.append(job)

    for identity, job in live.items():
        if identity in wanted:
            continue
        if job.status in NOT_STARTED:
            _cancel_unstarted(job, "removed from the order", now, result)
        elif job.wanted:
            job.wanted = False
            result.dirty.append(job)
    return result


@dataclass(frozen=True)
class DesiredRun:
    """Copies `first.copy_number`..`last_copy` of one part of one line item: jobs that must hold the same
    values, so a store can compare an order's jobs with what it wants a run at a time."""

    first: DesiredJob
    last_copy: int

    @property
    def size(self) -> int:
        return self.last_copy - self.first.copy_number + 1


def desired_runs(desired: DesiredOrder) -> list[DesiredRun] | None:
    """`desired_jobs` as runs of consecutive copies, without making a job per copy; None when the order repeats
    a line item (the first entry of an identity wins there, which only the full reconciliation sorts out)."""
    if len({line.line_item_id for line in desired.line_items}) != len(desired.line_items):
        return None
    return [DesiredRun(head, last) for head, last in _desired_heads(desired.line_items)]


def reconcile_unchanged(order: OrderRecord, desired: DesiredOrder, kept: int) -> Reconciliation | None:
    """What `reconcile_order_jobs` returns when every live job of the order already is what `desired` wants
    (wanted, and the waiting ones holding its values), without reading the jobs: only the revision moves."""
    if desired.print_revision <= order.applied_revision:
        return None
    record = replace(order)
    record.order_number = desired.order_number
    record.applied_revision = desired.print_revision
    record.cancelled = False
    return Reconciliation(order=record, kept=kept)


def cancel_order_jobs(
    order: OrderRecord | None, order_id: str, jobs: Sequence[Job], print_revision: int, now: datetime
) -> Reconciliation | None:
    """Order cancellation: jobs not yet started are cancelled, started ones finish."""
    if order is not None and print_revision <= order.applied_revision:
        return None
    record = replace(order) if order is not None else OrderRecord(order_id=order_id)
    record.applied_revision = print_revision
    record.cancelled = True
    result = Reconciliation(order=record)
    for job in jobs:
        if not job.live:
            continue
        if job.status in NOT_STARTED:
            _cancel_unstarted(job, "order cancelled", now, result)
        elif job.wanted:
            job.wanted = False
            result.dirty.append(job)
    return result


def _cancel_unstarted(job: Job, reason: str, now: datetime, result: Reconciliation) -> None:
    if job.status == "assigned":
        result.stops.append(job)
    job.status = "cancelled"
    job.wanted = False
    job.error = reason
    job.finished_at = now
    job.dispatch_deadline = None
    job.touch(now)
    result.cancelled.append(job)
    result.changed.append(job)
    result.dirty.append(job)


def _new_job(desired: DesiredOrder, want: DesiredJob, copy_number: int, now: datetime, job_id: str) -> Job:
    return Job(
        id=job_id,
        order_id=desired.order_id,
        order_number=desired.order_number,
        line_item_id=want.line_item_id,
        line_position=want.line_position,
        sku_id=want.sku_id,
        sku=want.sku,
        part_id=want.part_id,
        part_index=want.part_index,
        part_name=want.part_name,
        copy_number=copy_number,
        material=want.material,
        parameters=dict(want.parameters),
        file=dict(want.file),
        assignment=desired.assignment,
        order_created_at=desired.order_created_at,
        fulfillment_date=desired.fulfillment_date,
        grams=want.grams,
        print_minutes=want.print_minutes,
        created_at=now,
        updated_at=now,
    )


def _refresh(job: Job, desired: DesiredOrder, want: DesiredJob) -> bool:
    """A waiting job follows edits of its order (material, parameters, assignment, dates); the file it
    needs follows the values (the caller re-slices it). True if changed."""
    fresh: dict[str, Any] = {
        "order_number": desired.order_number,
        "assignment": desired.assignment,
        "fulfillment_date": desired.fulfillment_date,
        "order_created_at": desired.order_created_at,
        "line_position": want.line_position,
        "sku_id": want.sku_id,
        "sku": want.sku,
        "part_index": want.part_index,
        "part_name": want.part_name,
        "material": want.material,
        "parameters": want.parameters,
        "file": want.file,
        "grams": want.grams,
        "print_minutes": want.print_minutes,
    }
    changed = False
    for name, value in fresh.items():
        if getattr(job, name) != value:
            setattr(job, name, value)
            changed = True
    return changed
