"""The queue's use cases driven by other services' messages (orders, printers, slicer) and by its start.

Each handler owns its transaction: it enters the unit of work and commits it (a consumer's unit of work
already holds the delivery's inbox mark). Every visible job change becomes a JobChanged; every transaction
that changes an order's counts emits one OrderJobsSummarized for that order, with the order's next `sequence`.
Operators' actions are in `operator_actions`, the matching pass in `matching_pass`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from contracts.queue.v1 import JobChanged
from printqueue.domain import commands, lifecycle, slicing
from printqueue.domain.lifecycle import DispatchPolicy
from printqueue.domain.matching import Dispatch, readiness
from printqueue.domain.model import Job, Printer
from printqueue.domain.reconciliation import (
    Reconciliation,
    cancel_order_jobs,
    desired_runs,
    reconcile_order_jobs,
    reconcile_unchanged,
)
from printqueue.domain.slicing import Slice
from printqueue.service_layer import messages
from printqueue.service_layer.job_changes import built_while, carry_out, emit_stop, emit_summaries, locked_job
from printqueue.service_layer.matching_pass import dispatch_to_printer
from printqueue.service_layer.messages import Stats
from printqueue.service_layer.slice_requests import (
    TargetCache,
    desired_bases,
    ensure_slices,
    settle_after_answer,
    slice_ahead_for,
    slice_reconciled,
    slicing_view,
)
from printqueue.service_layer.unit_of_work import QueueUnitOfWork
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.outbox import EncodedEnvelope
from servicekit.tracing import current_traceparent


@dataclass(frozen=True)
class Deps:
    """Injected time, identity, dispatch policy and slicing patience."""

    clock: Clock = utc_now
    ids: IdFactory = new_id
    policy: DispatchPolicy = field(default_factory=DispatchPolicy)
    slice_answer_seconds: float = 1800.0
    """How long a slice request may stay unanswered before it is asked again (`slicing.chase`)."""
    max_slice_requests: int = 3


async def reconcile_order(
    cmd: commands.ReconcileOrder, uow: QueueUnitOfWork, deps: Deps
) -> Reconciliation | None:
    """Locks: the order, the fleet's models (shared) when any part needs slicing, then the slicing inputs
    its waiting jobs have and will have (so a slicer answer for them waits until these jobs exist), then
    its rows."""
    async with uow:
        result = await _reconcile(cmd, uow, deps)
        await uow.commit()
    return result


async def _reconcile(cmd: commands.ReconcileOrder, uow: QueueUnitOfWork, deps: Deps) -> Reconciliation | None:
    repo, desired = uow.queue, cmd.desired
    await repo.lock_order_key(desired.order_id)
    bases = desired_bases(desired) | await repo.waiting_bases_of_order(desired.order_id)
    if bases:
        await repo.lock_fleet_models(exclusive=False)
    await repo.lock_slice_bases(sorted(bases))
    order = await repo.get_order(desired.order_id, for_update=True)
    runs = desired_runs(desired) if order is not None and desired.print_revision > order.applied_revision else None
    if order is not None and runs is not None and await repo.jobs_already_match(desired, runs):
        result = reconcile_unchanged(order, desired, sum(run.size for run in runs))
    else:
        jobs = await repo.jobs_of_order(desired.order_id, for_update=True)
        result = reconcile_order_jobs(order, jobs, desired, deps.clock(), deps.ids)
    if result is None:
        return None
    await slice_reconciled(result, uow, deps)
    await _apply_reconciliation(result, uow, deps)
    traceparent = current_traceparent()
    if traceparent is not None:
        await repo.remember_trace(desired.order_id, traceparent)
    return result


async def cancel_order(cmd: commands.CancelOrder, uow: QueueUnitOfWork, deps: Deps) -> Reconciliation | None:
    async with uow:
        repo = uow.queue
        await repo.lock_order_key(cmd.order_id)
        order = await repo.get_order(cmd.order_id, for_update=True)
        jobs = await repo.jobs_of_order(cmd.order_id, for_update=True)
        result = cancel_order_jobs(order, cmd.order_id, jobs, cmd.print_revision, deps.clock())
        if result is not None:
            await _apply_reconciliation(result, uow, deps)
        await uow.commit()
    return result


async def _apply_reconciliation(result: Reconciliation, uow: QueueUnitOfWork, deps: Deps) -> None:
    repo = uow.queue
    await repo.save_order(result.order)
    changed = await _job_changes_while(repo.add_jobs(result.added), result.changed, uow)
    await repo.save_jobs(result.dirty)
    # The summary goes into the outbox first: the relay publishes in row order, and the orders service should
    # not wait behind a big order's JobChanged (100,000 of them took two minutes to drain before it).
    stats = Stats(added=len(result.added), cancelled=len(result.cancelled), kept=result.kept)
    await emit_summaries(uow, [result.order.order_id], stats)
    uow.emit_envelopes(changed)
    for job in result.stops:
        emit_stop(uow, job, job.printer_id, deps)
    uow.rematch = uow.rematch or bool(result.added or result.changed)


async def _job_changes_while(
    writing: Awaitable[None], jobs: Sequence[Job], uow: QueueUnitOfWork
) -> list[EncodedEnvelope]:
    """The jobs' JobChanged as JSON in their envelopes (not emitted yet), built while `writing` (a big order's
    COPY) runs (`job_changes.built_while`), handing the event loop back every `_BUILD_STEP` messages so the COPY
    keeps sending."""
    encode = messages.JobChangedJson()

    async def build() -> list[EncodedEnvelope]:
        built: list[EncodedEnvelope] = []
        for start in range(0, len(jobs), _BUILD_STEP):
            built += uow.encode(JobChanged, [(job.id, encode(job)) for job in jobs[start : start + _BUILD_STEP]])
            await asyncio.sleep(0)
        return built

    return await built_while(writing, build)


_BUILD_STEP = 200


async def record_printer(cmd: commands.RecordPrinter, uow: QueueUnitOfWork, deps: Deps) -> bool:
    """Newer revision wins; the queue's own notes about the printer (dispatch misses) survive updates."""
    async with uow:
        changed = await _record_printer(cmd.printer, uow, deps)
        await uow.commit()
    return changed


@dataclass(frozen=True)
class PrinterPass:
    """A matching pass run for one printer inside the transaction that recorded it."""

    dispatched: list[Dispatch]
    seconds: float


async def record_printer_and_dispatch(
    cmd: commands.RecordPrinter, uow: QueueUnitOfWork, deps: Deps
) -> PrinterPass | None:
    """`record_printer`, and a printer it makes ready gets its jobs in the same transaction
    (`matching_pass.dispatch_to_printer`): its start command leaves with this commit, without a second
    transaction after a wake of the loop. The loop is still woken when that pass could not run; the forecast
    is woken either way. Returns the pass when one ran. A known printer whose change needs no slices is saved by
    the pass's first statement (`save=True`): a round trip fewer between turning ready and the start command."""
    async with uow:
        done = None
        known, printer = await _newer_printer(cmd.printer, uow)
        if printer is not None:
            changed = known is None or _matching_view(known) != _matching_view(printer)
            dispatching = (uow.rematch or changed) and _may_be_ready(cmd.printer, deps)
            save_with_pass = dispatching and known is not None and slicing_view(known) == slicing_view(printer)
            if save_with_pass:
                uow.rematch = True
            else:
                await _save_printer(known, printer, uow, deps)
            if dispatching:
                started = time.perf_counter()
                dispatched = await dispatch_to_printer(printer, uow, deps, save=save_with_pass)
                if dispatched is not None:
                    done = PrinterPass(dispatched, time.perf_counter() - started)
                    uow.rematch, uow.reforecast = False, True
        await uow.commit()
    return done


def _may_be_ready(printer: Printer, deps: Deps) -> bool:
    """Not occupied is for the pass's query to say; what the message alone tells comes first."""
    return readiness(printer, False, deps.clock()) == "ready"


async def _record_printer(reported: Printer, uow: QueueUnitOfWork, deps: Deps) -> bool:
    known, printer = await _newer_printer(reported, uow)
    if printer is None:
        return False
    await _save_printer(known, printer, uow, deps)
    return True


async def _newer_printer(reported: Printer, uow: QueueUnitOfWork) -> tuple[Printer | None, Printer | None]:
    """The printer as known (read and locked; the read carries a consumer's inbox claim), and as it is to be saved:
    None when `reported` is no newer. Newer revision wins; the queue's own notes (dispatch misses) survive."""
    known = await uow.queue.get_printer(reported.id, for_update=True, inbox=uow.inbox_claim)
    if known is not None and reported.revision <= known.revision:
        return known, None
    printer = replace(
        reported,
        avoid_until=known.avoid_until if known else None,
        dispatch_misses=known.dispatch_misses if known else 0,
    )
    return known, printer


async def _save_printer(known: Printer | None, printer: Printer, uow: QueueUnitOfWork, deps: Deps) -> None:
    await uow.queue.save_printer(printer)
    uow.rematch = uow.rematch or known is None or _matching_view(known) != _matching_view(printer)
    if known is None or slicing_view(known) != slicing_view(printer):
        await slice_ahead_for(printer, uow, deps)


def _matching_view(printer: Printer) -> tuple[object, ...]:
    """What a matching pass reads of a printer; progress-only updates leave it alone."""
    return (printer.online, printer.state, printer.bed_clear, printer.materials, printer.tags,
            printer.protocol, printer.current_job_id, printer.idle_since, printer.deleted)


async def apply_print_report(cmd: commands.ApplyPrintReport, uow: QueueUnitOfWork, deps: Deps) -> None:
    async with uow:
        job = await locked_job(uow, cmd.report.job_id)
        if job is not None:
            now = deps.clock()
            before = job.status
            outcome = lifecycle.apply_print_report(job, cmd.report, now, deps.policy)
            await carry_out(uow, job, before, outcome, now, deps)
        await uow.commit()


async def complete_slice(cmd: commands.CompleteSlice, uow: QueueUnitOfWork, deps: Deps) -> bool:
    """A completed slice queues the jobs waiting for it. Duplicates, answers to a request nobody waits
    for any more, and answers after a completed one change nothing."""
    return await _take_answer(
        cmd.slice_key,
        lambda found: slicing.complete(found, cmd.file, cmd.profile, cmd.print_minutes, cmd.grams, deps.clock()),
        uow,
        deps,
    )


async def fail_slice(cmd: commands.FailSlice, uow: QueueUnitOfWork, deps: Deps) -> bool:
    """A failed slice fails the jobs whose every model's slice failed, with the slicer's message."""
    return await _take_answer(
        cmd.slice_key, lambda found: slicing.fail(found, cmd.error, cmd.stage, deps.clock()), uow, deps
    )


async def _take_answer(
    slice_key: str, answer: Callable[[Slice], bool], uow: QueueUnitOfWork, deps: Deps
) -> bool:
    """The slicer's answer on the slice, under its basis's lock, then on the jobs waiting for it; True when
    it changed the slice (`answer` says whether it applies)."""
    async with uow:
        repo = uow.queue
        changed = False
        peek = await repo.get_slice(slice_key)
        if peek is not None:
            await repo.lock_slice_bases([peek.basis])
            found = await repo.get_slice(slice_key, for_update=True)
            if found is not None and answer(found):
                await repo.save_slice(found)
                await settle_after_answer(found, uow, deps)
                changed = True
        await uow.commit()
    return changed


async def adopt_unsliced_jobs(cmd: commands.AdoptUnslicedJobs, uow: QueueUnitOfWork, deps: Deps) -> int:
    """Jobs queued before the queue sliced parts (an upgrade) still hold a mesh or an OpenSCAD source: they
    get their slicing inputs and are sliced instead of being sent to a printer that cannot print them."""
    async with uow:
        adopted = await _adopt_unsliced_jobs(uow, deps)
        await uow.commit()
    return adopted


async def _adopt_unsliced_jobs(uow: QueueUnitOfWork, deps: Deps) -> int:
    repo = uow.queue
    await repo.lock_fleet_models(exclusive=True)
    found = await repo.unsliced_waiting_jobs()
    if not found:
        return 0
    await repo.lock_slice_bases(sorted({basis for job in found if (basis := slicing.slice_basis(job))}))
    jobs = await repo.unsliced_waiting_jobs([job.id for job in found], for_update=True)
    for job in jobs:
        job.slice_basis = slicing.slice_basis(job)
    printers = await repo.printers()
    known = await ensure_slices(uow, jobs, printers, deps)
    now, targets = deps.clock(), TargetCache(printers)
    changed, summaries = [], set()
    for job in jobs:
        if slicing.settle(job, slicing.judge(targets.of(job.assignment), known.get(job.slice_basis or "", {})), now):
            changed.append(job)
            summaries.add(job.order_id)
    await repo.save_jobs(jobs)
    for job in changed:
        uow.emit(messages.job_changed(job), subject_id=job.id)
    await emit_summaries(uow, summaries)
    uow.rematch = uow.rematch or bool(jobs)
    return len(jobs)
