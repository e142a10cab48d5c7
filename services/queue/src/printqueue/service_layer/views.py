"""Reads for the routes: each opens its own unit of work and changes nothing (the SQL read models are
`adapters.views`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from printqueue.adapters import views
from printqueue.domain.analytics import JobFact
from printqueue.domain.matching import PrinterVerdict, explain
from printqueue.domain.model import FarmSettings, Job
from printqueue.service_layer.unit_of_work import UnitOfWork


async def jobs(
    where: views.JobFilter, sort: views.JobSort, limit: int, after: list[Any] | None, uow: UnitOfWork
) -> tuple[list[Job], list[Any] | None]:
    """A page of jobs and the sort key of its last row when more follow; a cursor that does not fit the
    sort raises ValueError or TypeError."""
    async with uow:
        return await views.list_jobs(uow.session, where, sort, limit, after)


async def job(job_id: str, uow: UnitOfWork) -> Job | None:
    async with uow:
        return await uow.queue.get_job(job_id)


@dataclass(frozen=True)
class JobMatching:
    job: Job
    color_tolerance: float
    verdicts: list[PrinterVerdict]


async def job_matching(job_id: str, clock: Callable[[], datetime], uow: UnitOfWork) -> JobMatching | None:
    """Why each printer would or would not take the job now; None when there is no such job."""
    async with uow:
        found = await uow.queue.get_job(job_id)
        if found is None:
            return None
        occupied = await uow.queue.occupied_printers()
        printers = await uow.queue.printers()
        slices = await uow.queue.slices_of([found.slice_basis]) if found.slice_basis is not None else []
        tolerance = (await uow.queue.farm_settings()).color_tolerance
    verdicts = explain(
        found, [(p, p.id in occupied) for p in printers], clock(), {s.target: s for s in slices}, tolerance
    )
    return JobMatching(found, tolerance, verdicts)


async def farm_settings(uow: UnitOfWork) -> FarmSettings:
    async with uow:
        return await uow.queue.farm_settings()


async def material_demand(uow: UnitOfWork) -> list[views.MaterialDemand]:
    """Waiting jobs per material against the printers holding it, at the farm's colour tolerance."""
    async with uow:
        printers = await uow.queue.printers()
        tolerance = (await uow.queue.farm_settings()).color_tolerance
        return await views.material_demand(uow.session, printers, tolerance)


async def job_facts(since: datetime, until: datetime, uow: UnitOfWork) -> list[JobFact]:
    async with uow:
        return await views.job_facts(uow.session, since, until)
