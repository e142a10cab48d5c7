"""Saving and announcing job changes inside the caller's transaction, shared by every use case that changes
jobs: each visible change becomes a JobChanged, each order whose counts changed gets one OrderJobsSummarized
with its next `sequence`, a job leaving a printer stops it; and the lock order every job writer keeps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from printqueue.domain import lifecycle
from printqueue.domain.errors import JobNotFound
from printqueue.domain.model import ACTIVE, Job, count_bucket
from printqueue.service_layer import messages
from printqueue.service_layer.messages import Stats
from printqueue.service_layer.unit_of_work import QueueUnitOfWork
from servicekit.outbox import EncodedEnvelope

if TYPE_CHECKING:
    from printqueue.service_layer.handlers import Deps


async def emit_summaries(uow: QueueUnitOfWork, order_ids: Iterable[str], stats: Stats | None = None) -> None:
    """One OrderJobsSummarized per order, with the order's next sequence (stored, so it stays monotonic)."""
    repo = uow.queue
    for order_id in sorted(set(order_ids)):
        order = await repo.get_order(order_id, for_update=True)
        if order is None:
            continue
        order.summary_sequence += 1
        await repo.save_order(order)
        summary = await repo.order_counts(order_id)
        stats = stats or Stats()
        uow.emit(messages.jobs_summarized(order, summary, stats), subject_id=order_id)


async def carry_out(
    uow: QueueUnitOfWork,
    job: Job,
    before: str,
    outcome: lifecycle.Outcome,
    now: datetime,
    deps: Deps,
    summaries: set[str] | None = None,
) -> None:
    """Save and announce one job's change. Order summaries go to `summaries` when the caller batches them
    (one per order per transaction), else they are emitted at once."""
    repo = uow.queue
    if outcome.changed:
        await repo.save_jobs([job])
        uow.emit(messages.job_changed(job), subject_id=job.id)
        if count_bucket(before) != count_bucket(job.status):
            if summaries is None:
                await emit_summaries(uow, [job.order_id])
            else:
                summaries.add(job.order_id)
        if before in ACTIVE and job.status not in ACTIVE:
            uow.rematch = True
    if outcome.stop_printer:
        emit_stop(uow, job, outcome.stop_printer, deps)
    for printer_id, flag in ((outcome.flag_printer, True), (outcome.started_on, False)):
        if printer_id is None:
            continue
        printer = await repo.get_printer(printer_id, for_update=True)
        if printer is None:
            continue
        if flag:
            lifecycle.flag_printer(printer, now, deps.policy)
        elif printer.dispatch_misses == 0 and printer.avoid_until is None:
            continue
        else:
            lifecycle.clear_printer_flag(printer)
        await repo.save_printer(printer)
        uow.rematch = True


def emit_stop(uow: QueueUnitOfWork, job: Job, printer_id: str | None, deps: Deps) -> None:
    if printer_id is None:
        return
    uow.emit(messages.stop_print(deps.ids(), job, printer_id, deps.clock()), subject_id=job.id)


async def job_for_update(uow: QueueUnitOfWork, job_id: str, *, slice_lock: bool = False) -> Job:
    """`locked_job`, for an operator's action on a job that must exist."""
    job = await locked_job(uow, job_id, slice_lock=slice_lock)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def locked_job(uow: QueueUnitOfWork, job_id: str, *, slice_lock: bool = False) -> Job | None:
    """Every writer takes the order's lock before any job row of it, so writers of one order never deadlock;
    one that may touch the job's slices takes their lock in between (the inputs cannot change under the
    order's lock)."""
    peek = await uow.queue.get_job(job_id)
    if peek is None:
        return None
    await uow.queue.lock_order_key(peek.order_id)
    if slice_lock:
        peek = await uow.queue.get_job(job_id)
        if peek is not None and peek.slice_basis is not None:
            await uow.queue.lock_fleet_models(exclusive=False)
            await uow.queue.lock_slice_bases([peek.slice_basis])
    return await uow.queue.get_job(job_id, for_update=True)


async def built_while(
    writing: Awaitable[None], build: Callable[[], Awaitable[list[EncodedEnvelope]]]
) -> list[EncodedEnvelope]:
    """What `build` returns (messages about many jobs), built while `writing` (those jobs' COPY or UPDATE) runs:
    PostgreSQL writes the rows through the jobs' indexes while Python renders the messages, instead of one
    waiting for the other; `build` must hand the event loop back now and then. Neither touches the other's
    objects. If building fails, the write is cancelled and awaited before the error goes on."""
    task = asyncio.ensure_future(writing)
    try:
        built = await build()
    except BaseException:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    await task
    return built
