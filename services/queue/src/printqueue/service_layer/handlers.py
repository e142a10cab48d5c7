"""Use cases: apply a message or an operator action to the queue inside the caller's unit of work.

Handlers never commit. Every visible job change becomes a JobChanged; every transaction that changes an
order's counts emits one OrderJobsSummarized for that order, with the order's next `sequence`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.orders.v1 import OrderCancelled, OrderPrintRequested
from contracts.printers.v1 import PrinterChanged, PrintUpdated
from contracts.queue.v1 import (
    JobChanged,
    JobCounts,
    JobFile,
    OrderJobsSummarized,
    PartEstimate,
    SlicePart,
    StartPrint,
    StopPrint,
)
from contracts.shared_values import Assignment as AssignmentMessage
from contracts.shared_values import FileRef
from contracts.shared_values import Material as MaterialMessage
from contracts.slicer.v1 import SliceCompleted, SliceFailed
from printqueue.domain import lifecycle, slicing
from printqueue.domain.errors import JobNotFound
from printqueue.domain.lifecycle import DispatchPolicy, PrintReport
from printqueue.domain.matching import Dispatch, Requirement, completed_slices, fitting_slots, match, readiness
from printqueue.domain.model import (
    ACTIVE,
    WAITING,
    Assignment,
    FarmSettings,
    Job,
    LoadedMaterial,
    Material,
    Printer,
    Priority,
    Target,
    count_bucket,
)
from printqueue.domain.model import JobCounts as DomainCounts
from printqueue.domain.reconciliation import (
    DesiredLineItem,
    DesiredOrder,
    DesiredPart,
    Reconciliation,
    cancel_order_jobs,
    desired_runs,
    reconcile_order_jobs,
    reconcile_unchanged,
)
from printqueue.domain.slicing import Slice
from printqueue.service_layer.unit_of_work import QueueUnitOfWork
from servicekit.collector import collector_paused
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.tracing import current_traceparent, span


@dataclass(frozen=True)
class Context:
    """Injected time, identity and dispatch policy."""

    clock: Clock = utc_now
    new_id: IdFactory = new_id
    policy: DispatchPolicy = field(default_factory=DispatchPolicy)
    slice_answer_seconds: float = 1800.0
    """How long a slice request may stay unanswered before it is asked again (`slicing.chase`)."""
    max_slice_requests: int = 3


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
    """Locks: the order, the fleet's models (shared) when any part needs slicing, then the slicing inputs
    its waiting jobs have and will have (so a slicer answer for them waits until these jobs exist), then
    its rows."""
    repo = uow.queue
    await repo.lock_order_key(message.order_id)
    desired = desired_order(message)
    bases = _desired_bases(desired) | await repo.waiting_bases_of_order(message.order_id)
    if bases:
        await repo.lock_fleet_models(exclusive=False)
    await repo.lock_slice_bases(sorted(bases))
    order = await repo.get_order(message.order_id)
    runs = desired_runs(desired) if order is not None and desired.print_revision > order.applied_revision else None
    if order is not None and runs is not None and await repo.jobs_already_match(desired, runs):
        result = reconcile_unchanged(order, desired, sum(run.size for run in runs))
    else:
        jobs = await repo.jobs_of_order(message.order_id)
        result = reconcile_order_jobs(order, jobs, desired, ctx.clock(), ctx.new_id)
    if result is None:
        return None
    await _slice_reconciled(result, uow, ctx)
    await _apply_reconciliation(result, uow, ctx)
    traceparent = current_traceparent()
    if traceparent is not None:
        await repo.remember_trace(message.order_id, traceparent)
    return result


def _desired_bases(desired: DesiredOrder) -> set[str]:
    """The slicing inputs of every part of every line (the values a line's jobs get: `desired_jobs`)."""
    bases: set[str] = set()
    for line in desired.line_items:
        if line.quantity <= 0:
            continue
        for part in line.parts:
            if part.quantity <= 0 or not slicing.needs_slicing(part.file):
                continue
            basis = slicing.basis_of(part.file, {**line.parameters, **part.parameter_values}, part.material)
            if basis is not None:
                bases.add(basis)
    return bases


async def _slice_reconciled(result: Reconciliation, uow: QueueUnitOfWork, ctx: Context) -> None:
    """New and edited waiting jobs get their slicing inputs; the slices they lack are requested and each
    job is `slicing` until one of its models has a completed slice."""
    touched: list[Job] = []
    bases: dict[tuple[str, int, str], str | None] = {}
    for job in result.changed:
        if job.status not in WAITING:
            continue
        shape = (job.line_item_id, job.part_index, job.part_id)
        if shape not in bases:
            bases[shape] = slicing.slice_basis(job)
        basis = bases[shape]
        if basis != job.slice_basis:
            job.slice_basis, job.sliced_file = basis, None
            if basis is None and job.status == "slicing":
                job.status = "queued"
        if basis is not None:
            touched.append(job)
    if not touched:
        return
    printers = await uow.queue.printers()
    known = await _ensure_slices(uow, touched, printers, ctx)
    now = ctx.clock()
    targets = _TargetCache(printers)
    fresh = {id(job) for job in result.added}
    for job in touched:
        outcome = slicing.judge(targets.of(job.assignment), known.get(job.slice_basis or "", {}))
        if slicing.settle(job, outcome, now) and id(job) in fresh:
            job.revision = 1


class _TargetCache:
    """`fitting_targets` per assignment: thousands of jobs of one order share a handful of assignments."""

    def __init__(self, printers: list[Printer]) -> None:
        self.printers = printers
        self._known: dict[Assignment, frozenset[Target]] = {}

    def of(self, assignment: Assignment) -> frozenset[Target]:
        found = self._known.get(assignment)
        if found is None:
            found = self._known[assignment] = slicing.fitting_targets(assignment, self.printers)
        return found


async def _ensure_slices(
    uow: QueueUnitOfWork, jobs: list[Job], printers: list[Printer], ctx: Context
) -> dict[str, dict[Target, Slice]]:
    """Request every slice `jobs` lack for the models that fit them (their bases are locked by the caller),
    once per key; returns the slices of their bases by target. The slices for models whose printers hold the
    job's material are asked first (the slicer works its queue in order): a ready printer waits for those."""
    repo = uow.queue
    bases = sorted({job.slice_basis for job in jobs if job.slice_basis is not None})
    known: dict[str, dict[Target, Slice]] = {basis: {} for basis in bases}
    for found in await repo.slices_of(bases):
        known.setdefault(found.basis, {})[found.target] = found
    targets = _TargetCache(printers)
    now = ctx.clock()
    asked: set[tuple[str, Assignment]] = set()
    later: list[Slice] = []
    for job in jobs:
        basis = job.slice_basis
        if basis is None or job.status not in WAITING or (basis, job.assignment) in asked:
            continue
        asked.add((basis, job.assignment))
        holding = slicing.holding_targets(job.assignment, job.material, printers)
        for target in slicing.missing_targets(targets.of(job.assignment), known[basis]):
            requested = slicing.new_slice(job, target, now)
            await repo.add_slice(requested)
            if target in holding:
                uow.emit(slice_part(requested, ctx), subject_id=requested.key)
            else:
                later.append(requested)
            known[basis][target] = requested
    for requested in later:
        uow.emit(slice_part(requested, ctx), subject_id=requested.key)
    return known


def slice_part(requested: Slice, ctx: Context) -> SlicePart:
    return SlicePart(
        slice_key=requested.key,
        source=FileRef.model_validate(requested.source),
        parameters=requested.parameters,
        printer_model=requested.printer_model,
        fabmatic=requested.fabmatic,
        material=MaterialMessage(type=requested.material.type, profile=requested.material.profile),
        requested_at=requested.requested_at,
    )


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
    # The summary goes into the outbox first: the relay publishes in row order, and the orders service should
    # not wait behind a big order's JobChanged (100,000 of them took two minutes to drain before it).
    stats = Stats(added=len(result.added), cancelled=len(result.cancelled), kept=result.kept)
    await emit_summaries(uow, [result.order.order_id], stats)
    for job in result.changed:
        uow.emit(job_changed(job), subject_id=job.id)
    for job in result.stops:
        _emit_stop(uow, job, job.printer_id, ctx)
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
                estimates={
                    k: [
                        PartEstimate(
                            part_id=e.part_id,
                            jobs=e.jobs,
                            sliced_jobs=e.sliced_jobs,
                            grams=round(e.grams, 3),
                            print_minutes=round(e.print_minutes, 3),
                        )
                        for e in v
                    ]
                    for k, v in sorted(summary.estimates.items())
                },
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
        protocol=message.protocol or "bambu_lan",
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
    if known is None or _slicing_view(known) != _slicing_view(printer):
        await _slice_ahead_for(printer, uow, ctx)
    return True


def _slicing_view(printer: Printer) -> tuple[object, ...]:
    """What decides which slices the printer needs: a new model (or FabMatic, or tags that let it take
    other jobs) asks for slices for the jobs waiting."""
    return (slicing.printer_target(printer), printer.tags)


async def _slice_ahead_for(printer: Printer, uow: QueueUnitOfWork, ctx: Context) -> None:
    """Request the slices this printer's model lacks for the waiting jobs it could take; a job still
    `slicing` whose slice for this model already exists is queued at once."""
    target = slicing.printer_target(printer)
    if target is None:
        return
    repo = uow.queue
    await repo.lock_fleet_models(exclusive=True)
    groups = [job for job in await repo.waiting_slice_groups() if slicing.fits_assignment(printer, job.assignment)]
    if not groups:
        return
    bases = sorted({job.slice_basis for job in groups if job.slice_basis is not None})
    await repo.lock_slice_bases(bases)
    printers = await repo.printers()
    known = await _ensure_slices(uow, groups, printers, ctx)
    ready = [basis for basis in bases if known.get(basis, {}).get(target) is not None
             and known[basis][target].state == "completed"]
    if ready:
        await _settle_slicing_jobs(uow, ready, printers, known, ctx)


async def _settle_slicing_jobs(
    uow: QueueUnitOfWork,
    bases: list[str],
    printers: list[Printer],
    known: dict[str, dict[Target, Slice]],
    ctx: Context,
) -> None:
    """Re-judge the `slicing` jobs of `bases` (locked by the caller) against their slices."""
    repo = uow.queue
    now = ctx.clock()
    targets = _TargetCache(printers)
    summaries: set[str] = set()
    changed: list[Job] = []
    for job in await repo.slicing_jobs_of_bases(bases):
        outcome = slicing.judge(targets.of(job.assignment), known.get(job.slice_basis or "", {}))
        if slicing.settle(job, outcome, now):
            changed.append(job)
            summaries.add(job.order_id)
    if not changed:
        return
    await repo.save_jobs(changed)
    for job in changed:
        uow.emit(job_changed(job), subject_id=job.id)
    await emit_summaries(uow, summaries)
    uow.rematch = uow.rematch or any(job.status == "queued" for job in changed)


async def adopt_unsliced_jobs(uow: QueueUnitOfWork, ctx: Context) -> int:
    """Jobs queued before the queue sliced parts (an upgrade) still hold a mesh or an OpenSCAD source: they
    get their slicing inputs and are sliced instead of being sent to a printer that cannot print them."""
    repo = uow.queue
    await repo.lock_fleet_models(exclusive=True)
    found = await repo.unsliced_waiting_jobs()
    if not found:
        return 0
    await repo.lock_slice_bases(sorted({basis for job in found if (basis := slicing.slice_basis(job))}))
    jobs = await repo.unsliced_waiting_jobs([job.id for job in found])
    for job in jobs:
        job.slice_basis = slicing.slice_basis(job)
    printers = await repo.printers()
    known = await _ensure_slices(uow, jobs, printers, ctx)
    now, targets = ctx.clock(), _TargetCache(printers)
    changed, summaries = [], set()
    for job in jobs:
        if slicing.settle(job, slicing.judge(targets.of(job.assignment), known.get(job.slice_basis or "", {})), now):
            changed.append(job)
            summaries.add(job.order_id)
    await repo.save_jobs(jobs)
    for job in changed:
        uow.emit(job_changed(job), subject_id=job.id)
    await emit_summaries(uow, summaries)
    uow.rematch = uow.rematch or bool(jobs)
    return len(jobs)


async def apply_slice_completed(message: SliceCompleted, uow: QueueUnitOfWork, ctx: Context) -> bool:
    """A completed slice queues the jobs waiting for it. Duplicates, answers to a request nobody waits
    for any more, and answers after a completed one change nothing."""
    repo = uow.queue
    peek = await repo.read_slice(message.slice_key)
    if peek is None:
        return False
    await repo.lock_slice_bases([peek.basis])
    found = await repo.get_slice(message.slice_key)
    if found is None:
        return False
    file = message.file.model_dump(mode="json")
    estimate = message.estimate
    if not slicing.complete(found, file, message.profile, estimate.print_minutes, estimate.grams, ctx.clock()):
        return False
    await repo.save_slice(found)
    await _settle_after_answer(found, uow, ctx)
    return True


async def apply_slice_failed(message: SliceFailed, uow: QueueUnitOfWork, ctx: Context) -> bool:
    """A failed slice fails the jobs whose every model's slice failed, with the slicer's message."""
    repo = uow.queue
    peek = await repo.read_slice(message.slice_key)
    if peek is None:
        return False
    await repo.lock_slice_bases([peek.basis])
    found = await repo.get_slice(message.slice_key)
    if found is None or not slicing.fail(found, message.error, message.stage, ctx.clock()):
        return False
    await repo.save_slice(found)
    await _settle_after_answer(found, uow, ctx)
    return True


UNANSWERED_BATCH = 100


async def chase_unanswered_slices(uow: QueueUnitOfWork, ctx: Context) -> int:
    """Asks the slicer again for the slices `slicing` jobs have waited on too long, or fails them once asked
    `ctx.max_slice_requests` times (their jobs fail when no other model's slice can serve them). At most
    `UNANSWERED_BATCH` per call; returns how many slices changed."""
    repo = uow.queue
    now = ctx.clock()
    overdue = await repo.unanswered_slices(now - timedelta(seconds=ctx.slice_answer_seconds), UNANSWERED_BATCH)
    await repo.lock_slice_bases(sorted({s.basis for s in overdue}))
    changed = 0
    for peek in overdue:
        found = await repo.get_slice(peek.key)
        if found is None:
            continue
        verdict = slicing.chase(found, now, ctx.slice_answer_seconds, ctx.max_slice_requests)
        if verdict is None:
            continue
        changed += 1
        await repo.save_slice(found)
        if verdict == "again":
            uow.emit(slice_part(found, ctx), subject_id=found.key)
        else:
            await _settle_after_answer(found, uow, ctx)
    return changed


async def _settle_after_answer(answered: Slice, uow: QueueUnitOfWork, ctx: Context) -> None:
    repo = uow.queue
    known: dict[str, dict[Target, Slice]] = {answered.basis: {}}
    for found in await repo.slices_of([answered.basis]):
        known[answered.basis][found.target] = found
    await _settle_slicing_jobs(uow, [answered.basis], await repo.printers(), known, ctx)


def _matching_view(printer: Printer) -> tuple[object, ...]:
    """What a matching pass reads of a printer; progress-only updates leave it alone."""
    return (printer.online, printer.state, printer.bed_clear, printer.materials, printer.tags,
            printer.protocol, printer.current_job_id, printer.idle_since, printer.deleted)


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

    ready = [p for p in await repo.ready_printer_candidates(now) if readiness(p, False, now) == "ready"]
    if not ready:
        return []
    tolerance = (await repo.farm_settings()).color_tolerance
    candidates = await repo.queued_candidates(ready, tolerance)
    bases = sorted({job.slice_basis for job in candidates if job.slice_basis is not None})
    completed = {(s.basis, s.target): s for s in await repo.slices_of(bases) if s.state == "completed"}
    with collector_paused():
        dispatches = match(candidates, ready, completed_slices(completed.values()), tolerance)
    if not dispatches:
        return []
    claimed = {job.id: job for job in await repo.claim_queued([d.job_id for d in dispatches])}
    printers = {p.id: p for p in ready}
    done: list[Dispatch] = []
    for planned in dispatches:
        job = claimed.get(planned.job_id)
        if job is None:
            continue
        if job.slice_basis is not None:
            printer_target = slicing.printer_target(printers[planned.printer_id])
            chosen = completed.get((job.slice_basis, printer_target)) if printer_target is not None else None
            if chosen is None:
                continue
            job.sliced_file = chosen.view()
        lifecycle.dispatch(job, planned.printer_id, ctx.new_id(), now, ctx.policy)
        done.append(planned)
    await repo.save_jobs([claimed[d.job_id] for d in done])
    traces = await repo.order_traces(claimed[d.job_id].order_id for d in done)
    for planned in done:
        job = claimed[planned.job_id]
        # The dispatch continues the trace of the print-jobs click that made the job, not the matching pass.
        with span(
            "queue dispatch",
            parent=traces.get(job.order_id),
            attributes={"printfarm.job_id": job.id, "printfarm.printer_id": planned.printer_id},
        ):
            uow.emit(job_changed(job), subject_id=job.id)
            requirement = Requirement.of(job.material, job.assignment, color_tolerance=tolerance)
            slots = fitting_slots(printers[planned.printer_id], requirement)
            uow.emit(start_print(job, ctx, slots), subject_id=job.id)
    return done


async def cancel_job(job_id: str, uow: QueueUnitOfWork, ctx: Context) -> Job:
    job = await _job(uow, job_id)
    now, before = ctx.clock(), job.status
    outcome = lifecycle.cancel_job(job, now)
    await _carry_out(uow, job, before, outcome, now, ctx)
    return job


async def retry_job(job_id: str, uow: QueueUnitOfWork, ctx: Context) -> Job:
    """A retried job that prints a slice is judged again; if every slice it could print has failed, the
    slicer is asked once more (an operator may have fixed what made it fail)."""
    job = await _job(uow, job_id, slice_lock=True)
    now, before = ctx.clock(), job.status
    lifecycle.retry_job(job, await uow.queue.identity_taken(job), now)
    if job.slice_basis is not None:
        await _reslice_retried(job, uow, ctx)
    await _carry_out(uow, job, before, lifecycle.Outcome(changed=True), now, ctx)
    uow.rematch = True
    return job


async def _reslice_retried(job: Job, uow: QueueUnitOfWork, ctx: Context) -> None:
    repo = uow.queue
    printers = await repo.printers()
    known = await _ensure_slices(uow, [job], printers, ctx)
    slices = known.get(job.slice_basis or "", {})
    targets = slicing.fitting_targets(job.assignment, printers)
    now = ctx.clock()
    if slicing.judge(targets, slices).verdict == "failed":
        for target in sorted(targets):
            again = slices[target]
            if slicing.request_again(again, now):
                await repo.save_slice(again)
                uow.emit(slice_part(again, ctx), subject_id=again.key)
    job.status = "slicing"
    slicing.settle(job, slicing.judge(targets, slices), now)


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


async def set_farm_settings(settings: FarmSettings, uow: QueueUnitOfWork, ctx: Context) -> FarmSettings:
    """The operator's matching settings; a wider colour tolerance may let waiting jobs match now."""
    if await uow.queue.farm_settings() != settings:
        await uow.queue.save_farm_settings(settings, ctx.clock())
        uow.rematch = True
    return settings


async def _job(uow: QueueUnitOfWork, job_id: str, *, slice_lock: bool = False) -> Job:
    job = await _locked_job(uow, job_id, slice_lock=slice_lock)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def _locked_job(uow: QueueUnitOfWork, job_id: str, *, slice_lock: bool = False) -> Job | None:
    """Every writer takes the order's lock before any job row of it, so writers of one order never deadlock;
    one that may touch the job's slices takes their lock in between (the inputs cannot change under the
    order's lock)."""
    peek = await uow.queue.read_job(job_id)
    if peek is None:
        return None
    await uow.queue.lock_order_key(peek.order_id)
    if slice_lock:
        peek = await uow.queue.read_job(job_id)
        if peek is not None and peek.slice_basis is not None:
            await uow.queue.lock_fleet_models(exclusive=False)
            await uow.queue.lock_slice_bases([peek.slice_basis])
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
        material=_material_message(job.material),
        parameters=job.parameters,
        assignment=_assignment_message(job.assignment),
        priority=job.priority,
        progress_percent=job.progress_percent,
        error=job.error,
        file=_job_file(job),
        revision=job.revision,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@functools.lru_cache(maxsize=4096)
def _material_message(material: Material) -> MaterialMessage:
    """Built once per material (messages are frozen): a 20,000-job order's JobChanged share a handful."""
    return MaterialMessage(type=material.type, color=material.color, profile=material.profile)


@functools.lru_cache(maxsize=4096)
def _assignment_message(assignment: Assignment) -> AssignmentMessage:
    return AssignmentMessage(mode=assignment.mode, printer_id=assignment.printer_id, tags=list(assignment.tags))


def _job_file(job: Job) -> JobFile | None:
    view = slicing.job_file(job)
    return JobFile.model_validate(view) if view is not None else None


def start_print(job: Job, ctx: Context, slots: Iterable[int] = ()) -> StartPrint:
    """The file is the part's own, or for a part that needed slicing the slice made for the printer's model;
    `slots` are the printer's spools matching judged to serve the job (a close colour included)."""
    assert job.printer_id is not None and job.command_id is not None
    sliced = job.sliced_file if job.slice_basis is not None else None
    assert job.slice_basis is None or (sliced is not None and sliced.get("file") is not None)
    return StartPrint(
        command_id=job.command_id,
        job_id=job.id,
        printer_id=job.printer_id,
        order_number=job.order_number,
        part_name=job.part_name,
        file=FileRef.model_validate(sliced["file"] if sliced is not None else job.file),
        material=MaterialMessage(type=job.material.type, color=job.material.color, profile=job.material.profile),
        parameters=job.parameters,
        attempt=job.dispatch_attempts,
        fulfillment_date=job.fulfillment_date,
        deadline_seconds=ctx.policy.deadline_seconds,
        issued_at=ctx.clock(),
        slots=list(slots),
    )
