"""Use cases: apply a message or an operator action to the queue inside the caller's unit of work.

Handlers never commit. Every visible job change becomes a JobChanged; every transaction that changes an
order's counts emits one OrderJobsSummarized for that order, with the order's next `sequence`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from contracts.common import Assignment as AssignmentMessage
from contracts.common import FileRef
from contracts.common import Material as MaterialMessage
from contracts.orders.v1 import OrderCancelled, OrderPrintRequested
from contracts.printers.v1 import PrinterChanged, PrintUpdated
from contracts.queue.v1 import JobChanged, JobCounts, OrderJobsSummarized, StartPrint, StopPrint
from printqueue.domain import lifecycle
from printqueue.domain.errors import JobNotFound
from printqueue.domain.lifecycle import DispatchPolicy, PrintReport
from printqueue.domain.matching import Dispatch, match, readiness
from printqueue.domain.model import ACTIVE, Assignment, Job, LoadedMaterial, Material, Printer, Priority, count_bucket
from printqueue.domain.model import JobCounts as DomainCounts
from printqueue.domain.reconciliation import (
    DesiredLineItem,
    DesiredOrder,
    DesiredPart,
    Reconciliation,
    cancel_order_jobs,
    reconcile_order_jobs,
)
from printqueue.service_layer.unit_of_work import QueueUnitOfWork
from servicekit.collector import collector_paused
from servicekit.ids import Clock, IdFactory, new_id, utc_now


@dataclass(frozen=True)
class Context:
    """Injected time, identity and dispatch policy."""

    clock: Clock = utc_now
    new_id: IdFactory = new_id
    policy: DispatchPolicy = field(default_factory=DispatchPolicy)


@dataclass
class Stats:
    added: int = 0
    cancelled: int = 0
    kept: int = 0


def desired_order(message: OrderPrintRequested) -> DesiredOrder:
    return DesiredOrder(
        order_id=message.order_id,
        order_number=message.order_number,
        print_revision=message.print_revision,
        assignment=_assignment(message.assignment),
        order_created_at=message.order_created_at,
        fulfillment_date=message.fulfillment_date,
        line_items=[
            DesiredLineItem(
                line_item_id=line.line_item_id,
                position=line.position,
                sku_id=line.sku_id,
                sku=line.sku,
                quantity=line.quantity,
                parameters=dict(line.parameters),
                parts=[
                    DesiredPart(
                        part_id=part.part_id,
                        part_name=part.part_name,
                        quantity=part.quantity,
                        material=Material(part.material.type, part.material.color, part.material.profile),
                        file=part.file.model_dump(mode="json"),
                        parameter_values=dict(part.parameter_values),
                        grams=part.grams,
                        print_minutes=part.print_minutes,
                    )
                    for part in line.parts
                ],
            )
            for line in message.line_items
        ],
    )


def _assignment(message: AssignmentMessage) -> Assignment:
    return Assignment(mode=message.mode, printer_id=message.printer_id, tags=tuple(message.tags))


async def reconcile_order(message: OrderPrintRequested, uow: QueueUnitOfWork, ctx: Context) -> Reconciliation | None:
    repo = uow.queue
    await repo.lock_order_key(message.order_id)
    order = await repo.get_order(message.order_id)
    jobs = await repo.jobs_of_order(message.order_id)
    result = reconcile_order_jobs(order, jobs, desired_order(message), ctx.clock(), ctx.new_id)
    if result is None:
        return None
    await _apply_reconciliation(result, uow, ctx)
    return result


async def cancel_order(message: OrderCancelled, uow: QueueUnitOfWork, ctx: Context) -> Reconciliation | None:
    repo = uow.queue
    await repo.lock_order_key(message.order_id)
    order = await repo.get_order(message.order_id)
    jobs = await repo.jobs_of_order(message.order_id)
    result = cancel_order_jobs(order, message.order_id, jobs, message.print_revision, ctx.clock())
    if result is None:
        return None
    await _apply_reconciliation(result, uow, ctx)
    return result


async def _apply_reconciliation(result: Reconciliation, uow: QueueUnitOfWork, ctx: Context) -> None:
    repo = uow.queue
    await repo.save_order(result.order)
    await repo.add_jobs(result.added)
    await repo.save_jobs(result.dirty)
    for job in result.changed:
        uow.emit(job_changed(job), subject_id=job.id)
    for job in result.stops:
        _emit_stop(uow, job, job.printer_id, ctx)
    stats = Stats(added=len(result.added), cancelled=len(result.cancelled), kept=result.kept)
    await emit_summaries(uow, [result.order.order_id], stats)
    uow.rematch = uow.rematch or bool(result.added or result.changed)


async def emit_summaries(uow: QueueUnitOfWork, order_ids: Iterable[str], stats: Stats | None = None) -> None:
    """One OrderJobsSummarized per order, with the order's next sequence (stored, so it stays monotonic)."""
    repo = uow.queue
    for order_id in sorted(set(order_ids)):
        order = await repo.get_order(order_id)
        if order is None:
            continue
        order.summary_sequence += 1
        await repo.save_order(order)
        summary = await repo.order_counts(order_id)
        stats = stats or Stats()
        uow.emit(
            OrderJobsSummarized(
                order_id=order_id,
                sequence=order.summary_sequence,
                print_revision=order.applied_revision,
                added=stats.added,
                cancelled=stats.cancelled,
                kept=stats.kept,
                line_items={k: _counts(v) for k, v in sorted(summary.line_items.items())},
                totals=_counts(summary.totals),
            ),
            subject_id=order_id,
        )


def _counts(counts: DomainCounts) -> JobCounts:
    return JobCounts(
        queued=counts.queued,
        printing=counts.printing,
        completed=counts.completed,
        failed=counts.failed,
        cancelled=counts.cancelled,
    )


async def apply_printer_changed(message: PrinterChanged, uow: QueueUnitOfWork, ctx: Context) -> bool:
    """Newer revision wins; the queue's own notes about the printer (dispatch misses) survive updates."""
    repo = uow.queue
    known = await repo.get_printer(message.id)
    if known is not None and message.revision <= known.revision:
        return False
    printer = Printer(
        id=message.id,
        name=message.name,
        revision=message.revision,
        model=message.model,
        tags=tuple(message.tags),
        fabmatic=message.fabmatic,
        online=message.online,
        state=message.state,
        bed_clear=message.bed_clear,
        materials=tuple(
            LoadedMaterial(slot=m.slot, type=m.type, color=m.color, profile=m.profile) for m in message.materials
        ),
        current_job_id=message.current_job_id,
        idle_since=message.idle_since,
        deleted=message.deleted,
        avoid_until=known.avoid_until if known else None,
        dispatch_misses=known.dispatch_misses if known else 0,
        updated_at=message.updated_at,
    )
    await repo.save_printer(printer)
    uow.rematch = uow.rematch or known is None or _matching_view(known) != _matching_view(printer)
    return True


def _matching_view(printer: Printer) -> tuple[object, ...]:
    """What a matching pass reads of a printer; progress-only updates leave it alone."""
    return (printer.online, printer.state, printer.bed_clear, printer.materials, printer.tags,
            printer.current_job_id, printer.idle_since, printer.deleted)


async def apply_print_updated(message: PrintUpdated, uow: QueueUnitOfWork, ctx: Context) -> None:
    job = await _locked_job(uow, message.job_id)
    if job is None:
        return
    now = ctx.clock()
    before = job.status
    outcome = lifecycle.apply_print_report(
        job,
        PrintReport(
            job_id=message.job_id,
            printer_id=message.printer_id,
            status=message.status,
            sequence=message.sequence,
            occurred_at=message.occurred_at,
            command_id=message.command_id,
            progress_percent=message.progress_percent,
            error=message.error,
        ),
        now,
        ctx.policy,
    )
    await _carry_out(uow, job, before, outcome, now, ctx)


async def _carry_out(
    uow: QueueUnitOfWork,
    job: Job,
    before: str,
    outcome: lifecycle.Outcome,
    now: datetime,
    ctx: Context,
    summaries: set[str] | None = None,
) -> None:
    """Save and announce one job's change. Order summaries go to `summaries` when the caller batches them
    (one per order per transaction), else they are emitted at once."""
    repo = uow.queue
    if outcome.changed:
        await repo.save_jobs([job])
        uow.emit(job_changed(job), subject_id=job.id)
        if count_bucket(before) != count_bucket(job.status):
            if summaries is None:
                await emit_summaries(uow, [job.order_id])
            else:
                summaries.add(job.order_id)
        if before in ACTIVE and job.status not in ACTIVE:
            uow.rematch = True
    if outcome.stop_printer:
        _emit_stop(uow, job, outcome.stop_printer, ctx)
    for printer_id, flag in ((outcome.flag_printer, True), (outcome.started_on, False)):
        if printer_id is None:
            continue
        printer = await repo.get_printer(printer_id)
        if printer is None:
            continue
        if flag:
            lifecycle.flag_printer(printer, now, ctx.policy)
        elif printer.dispatch_misses == 0 and printer.avoid_until is None:
            continue
        else:
            lifecycle.clear_printer_flag(printer)
        await repo.save_printer(printer)
        uow.rematch = True


def _emit_stop(uow: QueueUnitOfWork, job: Job, printer_id: str | None, ctx: Context) -> None:
    if printer_id is None:
        return
    uow.emit(
        StopPrint(command_id=ctx.new_id(), job_id=job.id, printer_id=printer_id, issued_at=ctx.clock()),
        subject_id=job.id,
    )


async def run_matching_pass(uow: QueueUnitOfWork, ctx: Context, *, assign: bool = True) -> list[Dispatch]:
    """Expire overdue dispatches, then give queued jobs to ready printers, under the cluster-wide lock.
    With `assign=False` it only expires deadlines, and matches only if a dispatch came back."""
    repo = uow.queue
    await repo.lock_matching()
    now = ctx.clock()
    summaries: set[str] = set()
    expired = await repo.expired_dispatches(now)
    for job_id in expired:
        job = await _locked_job(uow, job_id)
        if job is not None:
            before = job.status
            outcome = lifecycle.expire_dispatch(job, now, ctx.policy)
            await _carry_out(uow, job, before, outcome, now, ctx, summaries)
    await emit_summaries(uow, summaries)
    if not assign and not expired:
        return []

    occupied = await repo.occupied_printers()
    ready = [p for p in await repo.ready_printer_candidates(now) if readiness(p, p.id in occupied, now) == "ready"]
    if not ready:
        return []
    candidates = await repo.queued_candidates(ready)
    with collector_paused():
        dispatches = match(candidates, ready)
    if not dispatches:
        return []
    claimed = {job.id: job for job in await repo.claim_queued([d.job_id for d in dispatches])}
    done: list[Dispatch] = []
    for planned in dispatches:
        job = claimed.get(planned.job_id)
        if job is None:
            continue
        lifecycle.dispatch(job, planned.printer_id, ctx.new_id(), now, ctx.policy)
        done.append(planned)
    await repo.save_jobs([claimed[d.job_id] for d in done])
    for planned in done:
        job = claimed[planned.job_id]
        uow.emit(job_changed(job), subject_id=job.id)
        uow.emit(start_print(job, ctx), subject_id=job.id)
    return done


async def cancel_job(job_id: str, uow: QueueUnitOfWork, ctx: Context) -> Job:
    job = await _job(uow, job_id)
    now, before = ctx.clock(), job.status
    outcome = lifecycle.cancel_job(job, now)
    await _carry_out(uow, job, before, outcome, now, ctx)
    return job


async def retry_job(job_id: str, uow: QueueUnitOfWork, ctx: Context) -> Job:
    job = await _job(uow, job_id)
    now, before = ctx.clock(), job.status
    lifecycle.retry_job(job, await uow.queue.identity_taken(job), now)
    await _carry_out(uow, job, before, lifecycle.Outcome(changed=True), now, ctx)
    uow.rematch = True
    return job


async def reject_job(job_id: str, uow: QueueUnitOfWork, ctx: Context) -> Job:
    job = await _job(uow, job_id)
    now, before = ctx.clock(), job.status
    lifecycle.reject_job(job, now)
    await _carry_out(uow, job, before, lifecycle.Outcome(changed=True), now, ctx)
    return job


async def set_job_priority(job_id: str, priority: Priority, uow: QueueUnitOfWork, ctx: Context) -> Job:
    job = await _job(uow, job_id)
    now, before = ctx.clock(), job.status
    if lifecycle.set_priority(job, priority, now):
        await _carry_out(uow, job, before, lifecycle.Outcome(changed=True), now, ctx)
        uow.rematch = True
    return job


async def _job(uow: QueueUnitOfWork, job_id: str) -> Job:
    job = await _locked_job(uow, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def _locked_job(uow: QueueUnitOfWork, job_id: str) -> Job | None:
    """Every writer takes the order's lock before any job row of it, so writers of one order never deadlock."""
    peek = await uow.queue.read_job(job_id)
    if peek is None:
        return None
    await uow.queue.lock_order_key(peek.order_id)
    return await uow.queue.get_job(job_id)


def job_changed(job: Job) -> JobChanged:
    return JobChanged(
        id=job.id,
        order_id=job.order_id,
        order_number=job.order_number,
        line_item_id=job.line_item_id,
        sku_id=job.sku_id,
        part_id=job.part_id,
        part_name=job.part_name,
        copy_number=job.copy_number,
        status=job.status,
        printer_id=job.printer_id,
        material=MaterialMessage(type=job.material.type, color=job.material.color, profile=job.material.profile),
        parameters=job.parameters,
        assignment=AssignmentMessage(
            mode=job.assignment.mode, printer_id=job.assignment.printer_id, tags=list(job.assignment.tags)
        ),
        priority=job.priority,
        progress_percent=job.progress_percent,
        error=job.error,
        revision=job.revision,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def start_print(job: Job, ctx: Context) -> StartPrint:
    assert job.printer_id is not None and job.command_id is not None
    return StartPrint(
        command_id=job.command_id,
        job_id=job.id,
        printer_id=job.printer_id,
        order_number=job.order_number,
        part_name=job.part_name,
        file=FileRef.model_validate(job.file),
        material=MaterialMessage(type=job.material.type, color=job.material.color, profile=job.material.profile),
        parameters=job.parameters,
        attempt=job.dispatch_attempts,
        fulfillment_date=job.fulfillment_date,
        deadline_seconds=ctx.policy.deadline_seconds,
        issued_at=ctx.clock(),
    )
