"""Slicing inside the caller's transaction: asking the slicer for the slices waiting jobs lack (once per key,
the ones a ready printer waits for first) and settling the `slicing` jobs on what the slices became."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from printqueue.domain import commands, slicing
from printqueue.domain.model import WAITING, Assignment, Job, Printer, Target
from printqueue.domain.reconciliation import DesiredOrder, Reconciliation
from printqueue.domain.slicing import Slice
from printqueue.service_layer import messages
from printqueue.service_layer.job_changes import emit_summaries
from printqueue.service_layer.unit_of_work import QueueUnitOfWork

if TYPE_CHECKING:
    from printqueue.service_layer.handlers import Deps

UNANSWERED_BATCH = 100


class TargetCache:
    """`fitting_targets` per assignment: thousands of jobs of one order share a handful of assignments."""

    def __init__(self, printers: list[Printer]) -> None:
        self.printers = printers
        self._known: dict[Assignment, frozenset[Target]] = {}

    def of(self, assignment: Assignment) -> frozenset[Target]:
        found = self._known.get(assignment)
        if found is None:
            found = self._known[assignment] = slicing.fitting_targets(assignment, self.printers)
        return found


def desired_bases(desired: DesiredOrder) -> set[str]:
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


async def slice_reconciled(result: Reconciliation, uow: QueueUnitOfWork, deps: Deps) -> None:
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
    known = await ensure_slices(uow, touched, printers, deps)
    now = deps.clock()
    targets = TargetCache(printers)
    fresh = {id(job) for job in result.added}
    for job in touched:
        outcome = slicing.judge(targets.of(job.assignment), known.get(job.slice_basis or "", {}))
        if slicing.settle(job, outcome, now) and id(job) in fresh:
            job.revision = 1


async def ensure_slices(
    uow: QueueUnitOfWork, jobs: list[Job], printers: list[Printer], deps: Deps
) -> dict[str, dict[Target, Slice]]:
    """Request every slice `jobs` lack for the models that fit them (their bases are locked by the caller),
    once per key; returns the slices of their bases by target. The slices for models whose printers hold the
    job's material are asked first (the slicer works its queue in order): a ready printer waits for those."""
    repo = uow.queue
    bases = sorted({job.slice_basis for job in jobs if job.slice_basis is not None})
    known: dict[str, dict[Target, Slice]] = {basis: {} for basis in bases}
    for found in await repo.slices_of(bases):
        known.setdefault(found.basis, {})[found.target] = found
    targets = TargetCache(printers)
    now = deps.clock()
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
                uow.emit(messages.slice_part(requested), subject_id=requested.key)
            else:
                later.append(requested)
            known[basis][target] = requested
    for requested in later:
        uow.emit(messages.slice_part(requested), subject_id=requested.key)
    return known


def slicing_view(printer: Printer) -> tuple[object, ...]:
    """What decides which slices the printer needs: a new model (or FabMatic, or tags that let it take
    other jobs) asks for slices for the jobs waiting."""
    return (slicing.printer_target(printer), printer.tags)


async def slice_ahead_for(printer: Printer, uow: QueueUnitOfWork, deps: Deps) -> None:
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
    known = await ensure_slices(uow, groups, printers, deps)
    ready = [basis for basis in bases if known.get(basis, {}).get(target) is not None
             and known[basis][target].state == "completed"]
    if ready:
        await settle_slicing_jobs(uow, ready, printers, known, deps)


async def settle_slicing_jobs(
    uow: QueueUnitOfWork,
    bases: list[str],
    printers: list[Printer],
    known: dict[str, dict[Target, Slice]],
    deps: Deps,
) -> None:
    """Re-judge the `slicing` jobs of `bases` (locked by the caller) against their slices."""
    repo = uow.queue
    now = deps.clock()
    targets = TargetCache(printers)
    summaries: set[str] = set()
    changed: list[Job] = []
    for job in await repo.slicing_jobs_of_bases(bases, for_update=True):
        outcome = slicing.judge(targets.of(job.assignment), known.get(job.slice_basis or "", {}))
        if slicing.settle(job, outcome, now):
            changed.append(job)
            summaries.add(job.order_id)
    if not changed:
        return
    await repo.save_jobs(changed)
    for job in changed:
        uow.emit(messages.job_changed(job), subject_id=job.id)
    await emit_summaries(uow, summaries)
    uow.rematch = uow.rematch or any(job.status == "queued" for job in changed)


async def settle_after_answer(answered: Slice, uow: QueueUnitOfWork, deps: Deps) -> None:
    repo = uow.queue
    known: dict[str, dict[Target, Slice]] = {answered.basis: {}}
    for found in await repo.slices_of([answered.basis]):
        known[answered.basis][found.target] = found
    await settle_slicing_jobs(uow, [answered.basis], await repo.printers(), known, deps)


async def reslice_retried(job: Job, uow: QueueUnitOfWork, deps: Deps) -> None:
    """A retried job is judged again; if every slice it could print has failed, the slicer is asked once
    more (an operator may have fixed what made it fail)."""
    repo = uow.queue
    printers = await repo.printers()
    known = await ensure_slices(uow, [job], printers, deps)
    slices = known.get(job.slice_basis or "", {})
    targets = slicing.fitting_targets(job.assignment, printers)
    now = deps.clock()
    if slicing.judge(targets, slices).verdict == "failed":
        for target in sorted(targets):
            again = slices[target]
            if slicing.request_again(again, now):
                await repo.save_slice(again)
                uow.emit(messages.slice_part(again), subject_id=again.key)
    job.status = "slicing"
    slicing.settle(job, slicing.judge(targets, slices), now)


async def chase_unanswered_slices(cmd: commands.ChaseUnansweredSlices, uow: QueueUnitOfWork, deps: Deps) -> int:
    """Asks the slicer again for the slices `slicing` jobs have waited on too long, or fails them once asked
    `deps.max_slice_requests` times (their jobs fail when no other model's slice can serve them). At most
    `UNANSWERED_BATCH` per call; returns how many slices changed."""
    async with uow:
        changed = await _chase(uow, deps)
        await uow.commit()
    return changed


async def _chase(uow: QueueUnitOfWork, deps: Deps) -> int:
    repo = uow.queue
    now = deps.clock()
    overdue = await repo.unanswered_slices(now - timedelta(seconds=deps.slice_answer_seconds), UNANSWERED_BATCH)
    await repo.lock_slice_bases(sorted({s.basis for s in overdue}))
    changed = 0
    for peek in overdue:
        found = await repo.get_slice(peek.key, for_update=True)
        if found is None:
            continue
        verdict = slicing.chase(found, now, deps.slice_answer_seconds, deps.max_slice_requests)
        if verdict is None:
            continue
        changed += 1
        await repo.save_slice(found)
        if verdict == "again":
            uow.emit(messages.slice_part(found), subject_id=found.key)
        else:
            await settle_after_answer(found, uow, deps)
    return changed
