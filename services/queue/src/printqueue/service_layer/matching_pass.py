"""The matching pass: expire overdue dispatches, then give queued jobs to ready printers, in a transaction of
its own that clears `rematch` (the pass itself needs no further pass). A printer that just turned ready gets its
own pass inside the transaction that recorded it (`dispatch_to_printer`), so its start command needs no second
transaction nor a wake of the loop."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from contracts.queue.v1 import JobChanged, StartPrint
from printqueue.domain import commands, lifecycle, slicing
from printqueue.domain.matching import Candidates, Dispatch, Fleet, Requirement, decide, fitting_slots, readiness
from printqueue.service_layer import messages
from printqueue.service_layer.job_changes import built_while, carry_out, emit_summaries, locked_job
from printqueue.service_layer.unit_of_work import QueueUnitOfWork
from servicekit.collector import collector_paused
from servicekit.outbox import EncodedEnvelope
from servicekit.tracing import span

if TYPE_CHECKING:
    from datetime import datetime

    from printqueue.domain.model import Assignment, Job, Material, Printer
    from printqueue.service_layer.handlers import Deps


async def run_matching_pass(cmd: commands.RunMatchingPass, uow: QueueUnitOfWork, deps: Deps) -> list[Dispatch]:
    """Expire overdue dispatches, then give queued jobs to ready printers, under the cluster-wide lock.
    With `assign=False` it only expires deadlines, and matches only if a dispatch came back."""
    async with uow:
        done = await _pass(uow, deps, cmd.assign)
        uow.rematch = False
        await uow.commit()
    return done


async def _pass(uow: QueueUnitOfWork, deps: Deps, assign: bool) -> list[Dispatch]:
    repo = uow.queue
    settings = await repo.lock_matching()
    now = deps.clock()
    summaries: set[str] = set()
    expired = await repo.expired_dispatches(now)
    for job_id in expired:
        job = await locked_job(uow, job_id)
        if job is not None:
            before = job.status
            outcome = lifecycle.expire_dispatch(job, now, deps.policy)
            await carry_out(uow, job, before, outcome, now, deps, summaries)
    await emit_summaries(uow, summaries)
    if not assign and not expired:
        return []
    # A whole fleet ready allocates some hundred thousand objects (printers, groups, jobs, messages), none in a
    # cycle: the cyclic collector, left on, rescanned them some 25 times (a tenth of such a pass's CPU). Cycles
    # other tasks make while the pass awaits PostgreSQL are collected once it ends.
    with collector_paused():
        ready = [p for p in await repo.ready_printer_candidates(now) if readiness(p, False, now) == "ready"]
        return (await _assign(uow, deps, ready, settings.color_tolerance, now))[0]


async def dispatch_to_printer(
    printer: Printer, uow: QueueUnitOfWork, deps: Deps, *, save: bool = False
) -> list[Dispatch] | None:
    """A pass for one printer, inside the caller's open transaction (the consumer that recorded it ready): the
    other printers' outcome cannot change with this one's state. None when the caller must wake the loop's
    pass instead: another pass holds the lock, or a job this printer was given is locked by another
    transaction. It never waits for a lock (its caller holds the printer's row, which passes lock after the
    pass's lock and the jobs'). With `save`, `printer` (its row locked by the caller) is saved by the statement
    that tries the lock, whatever the lock does, and is the pass's candidate as saved instead of read back."""
    now = deps.clock()
    if save:
        saved = await uow.queue.save_printer_and_try_lock_matching(printer)
        locked = None if saved is None else (saved[0], [printer] if saved[1] else [])
    else:
        locked = await uow.queue.try_lock_matching_for(printer.id, now)
    if locked is None:
        return None
    settings, candidates = locked
    ready = [p for p in candidates if readiness(p, False, now) == "ready"]
    done, complete = await _assign(uow, deps, ready, settings.color_tolerance, now, skip_locked=True)
    return done if complete else None


async def _assign(
    uow: QueueUnitOfWork, deps: Deps, ready: list[Printer], tolerance: float, now: datetime,
    *, skip_locked: bool = False,
) -> tuple[list[Dispatch], bool]:
    """Give queued jobs to the `ready` printers, under the pass's lock. Also says whether every planned
    dispatch was claimed (with `skip_locked`, a job another transaction holds is left out)."""
    if not ready:
        return [], True
    repo = uow.queue
    fleet = Fleet(ready)
    candidates, cut = await repo.queued_groups(fleet, tolerance, FIRST_SPREAD)
    dispatches = _decide(candidates, fleet)
    if cut:
        dispatched = {d.job_id for d in dispatches}
        if any(all(job_id in dispatched for job_id in ids) for ids in cut):
            candidates, _ = await repo.queued_groups(fleet, tolerance)
            dispatches = _decide(candidates, fleet)
    if not dispatches:
        return [], True
    planned_ids = [d.job_id for d in dispatches]
    jobs, traces = await repo.claim_queued(planned_ids, skip_locked=skip_locked)
    claimed = {job.id: job for job in jobs}
    bases = sorted({job.slice_basis for job in claimed.values() if job.slice_basis is not None})
    completed = {(s.basis, s.target): s for s in await repo.slices_of(bases) if s.state == "completed"}
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
        lifecycle.dispatch(job, planned.printer_id, deps.ids(), now, deps.policy)
        done.append(planned)
    saving = repo.save_dispatched([claimed[d.job_id] for d in done])
    overlap = len(done) >= _OVERLAP_FROM
    build = functools.partial(_dispatch_messages, uow, deps, done, claimed, traces, printers, tolerance, overlap)
    if overlap:
        built = await built_while(saving, build)
    else:
        await saving
        built = await build()
    uow.emit_envelopes(built)
    return done, len(claimed) == len(planned_ids)


async def _dispatch_messages(
    uow: QueueUnitOfWork, deps: Deps, done: list[Dispatch], claimed: dict[str, Job], traces: dict[str, str],
    printers: dict[str, Printer], tolerance: float, overlap: bool,
) -> list[EncodedEnvelope]:
    """Each dispatch's StartPrint and JobChanged in their envelopes, not emitted yet. With `overlap` it hands the
    event loop back every `_OVERLAP_FROM` messages, so a write running beside it (`built_while`) keeps going."""
    by_trace: dict[str | None, list[Dispatch]] = {}
    for planned in done:
        by_trace.setdefault(traces.get(claimed[planned.job_id].order_id), []).append(planned)
    requirements: dict[tuple[Material, Assignment], Requirement] = {}
    job_changed, start_print = messages.JobChangedJson(), messages.StartPrintJson(deps.policy.deadline_seconds)
    built: list[EncodedEnvelope] = []
    for parent, group in by_trace.items():
        # The dispatches continue the trace of the print-jobs click that made their jobs, not the matching pass:
        # one span per trace, not per dispatch (a pass over a whole fleet made 10,000).
        with span("queue dispatch", parent=parent, attributes=_dispatch_attributes(group)):
            starts: list[tuple[str | None, str]] = []
            issued_at = deps.clock()  # the commands of one commit are issued together
            for n, planned in enumerate(group, 1):
                job = claimed[planned.job_id]
                requirement = requirements.get((job.material, job.assignment))
                if requirement is None:
                    requirement = Requirement.of(job.material, job.assignment, color_tolerance=tolerance)
                    requirements[job.material, job.assignment] = requirement
                slots = fitting_slots(printers[planned.printer_id], requirement)
                starts.append((job.id, start_print(job, issued_at, slots)))
                if overlap and not n % _OVERLAP_FROM:
                    await asyncio.sleep(0)
            # The starts first: a printer need not wait behind a big order's JobChanged in the outbox.
            built += uow.encode(StartPrint, starts)
            group_jobs = [claimed[planned.job_id] for planned in group]
            for first in range(0, len(group_jobs), _OVERLAP_FROM):
                changed = [(job.id, job_changed(job)) for job in group_jobs[first : first + _OVERLAP_FROM]]
                built += uow.encode(JobChanged, changed)
                if overlap:
                    await asyncio.sleep(0)
    return built


_OVERLAP_FROM = 200
"""From this many dispatches a pass builds their messages while their UPDATE runs, handing the event loop back
every so many (a printer turning ready, one dispatch, does one then the other: no task to schedule)."""


def _dispatch_attributes(group: list[Dispatch]) -> dict[str, str | int]:
    """A lone dispatch (a printer turning ready) names its job and printer; a bigger group only counts them."""
    if len(group) == 1:
        return {"printfarm.job_id": group[0].job_id, "printfarm.printer_id": group[0].printer_id}
    return {"printfarm.dispatches": len(group)}


FIRST_SPREAD = 2.0
"""A pass first loads each requirement group's heads up to twice its share of the ready printers: a whole
fleet ready over a long queue reads a fraction of the jobs. The decision is the same as with every head a
group's fitting printers could take unless a group so cut dispatched all it loaded (its next jobs might
have gone too, and any job after a refused one of its group is refused as well); then the pass loads again
in full."""


def _decide(candidates: Candidates, fleet: Fleet) -> list[Dispatch]:
    with collector_paused():
        return decide(candidates, fleet)
