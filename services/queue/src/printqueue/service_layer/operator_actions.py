"""Operators' actions on jobs and on the farm's matching settings (the queue's write routes)."""

from __future__ import annotations

from printqueue.domain import commands, lifecycle
from printqueue.domain.model import FarmSettings, Job
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.job_changes import carry_out, job_for_update
from printqueue.service_layer.slice_requests import reslice_retried
from printqueue.service_layer.unit_of_work import QueueUnitOfWork


async def cancel_job(cmd: commands.CancelJob, uow: QueueUnitOfWork, deps: Deps) -> Job:
    async with uow:
        job = await job_for_update(uow, cmd.job_id)
        now, before = deps.clock(), job.status
        outcome = lifecycle.cancel_job(job, now)
        await carry_out(uow, job, before, outcome, now, deps)
        await uow.commit()
    return job


async def retry_job(cmd: commands.RetryJob, uow: QueueUnitOfWork, deps: Deps) -> Job:
    """A retried job that prints a slice is judged again; if every slice it could print has failed, the
    slicer is asked once more (an operator may have fixed what made it fail)."""
    async with uow:
        job = await job_for_update(uow, cmd.job_id, slice_lock=True)
        now, before = deps.clock(), job.status
        lifecycle.retry_job(job, await uow.queue.identity_taken(job), now)
        if job.slice_basis is not None:
            await reslice_retried(job, uow, deps)
        await carry_out(uow, job, before, lifecycle.Outcome(changed=True), now, deps)
        uow.rematch = True
        await uow.commit()
    return job


async def reject_job(cmd: commands.RejectJob, uow: QueueUnitOfWork, deps: Deps) -> Job:
    async with uow:
        job = await job_for_update(uow, cmd.job_id)
        now, before = deps.clock(), job.status
        lifecycle.reject_job(job, now)
        await carry_out(uow, job, before, lifecycle.Outcome(changed=True), now, deps)
        await uow.commit()
    return job


async def set_job_priority(cmd: commands.SetJobPriority, uow: QueueUnitOfWork, deps: Deps) -> Job:
    async with uow:
        job = await job_for_update(uow, cmd.job_id)
        now, before = deps.clock(), job.status
        if lifecycle.set_priority(job, cmd.priority, now):
            await carry_out(uow, job, before, lifecycle.Outcome(changed=True), now, deps)
            uow.rematch = True
        await uow.commit()
    return job


async def set_farm_settings(cmd: commands.SetFarmSettings, uow: QueueUnitOfWork, deps: Deps) -> FarmSettings:
    """The operator's matching settings; a wider colour tolerance may let waiting jobs match now."""
    async with uow:
        if await uow.queue.farm_settings() != cmd.settings:
            await uow.queue.save_farm_settings(cmd.settings, deps.clock())
            uow.rematch = True
        await uow.commit()
    return cmd.settings
