"""What a forecast reads: every open job, the fleet, and the printer models slices exist or are being made for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.adapters.farm_settings_repository import SqlFarmSettingsRepository
from printqueue.adapters.mappers import job_from_row, printer_from_row, slice_from_row
from printqueue.domain.forecast import OPEN
from printqueue.domain.matching import FileFamily, SlicedFor, SlicedTargets, completed_slices
from printqueue.domain.model import Job, Printer

FAMILIES: tuple[FileFamily, ...] = get_args(FileFamily)


@dataclass
class ForecastInputs:
    jobs: list[Job]
    printers: list[Printer]
    sliced: SlicedTargets
    color_tolerance: float = 0.0


async def load_forecast_inputs(session: AsyncSession) -> ForecastInputs:
    """Four queries whatever the size. A slice still being made counts too: the job waiting for it will
    print on a printer of that model once it is done (the slicer makes the file that model's kind prints)."""
    p, s = orm.printers, orm.slices
    jobs = await _open_jobs(session)
    printers = [printer_from_row(r) for r in await session.execute(sa.select(p).where(p.c.deleted.is_(False)))]
    bases = sorted({job.slice_basis for job in jobs if job.slice_basis is not None})
    slices = []
    if bases:
        query = sa.select(s).where(s.c.slice_basis.in_(bases), s.c.state.in_(["requested", "completed"]))
        slices = [slice_from_row(r) for r in await session.execute(query)]
    found: dict[str, set[SlicedFor]] = {basis: set(made) for basis, made in completed_slices(slices).items()}
    for slice_ in slices:
        if slice_.state == "requested":
            found.setdefault(slice_.basis, set()).update((*slice_.target, family) for family in FAMILIES)
    tolerance = (await SqlFarmSettingsRepository(session).farm_settings()).color_tolerance
    return ForecastInputs(jobs, printers, {basis: frozenset(made) for basis, made in found.items()}, tolerance)


async def _open_jobs(session: AsyncSession) -> list[Job]:
    """Read through a cursor `JOBS_PER_FETCH` rows at a time: the forecast's process also carries the consumers,
    and turning 20,000 rows into jobs at once held its event loop for a quarter of a second, every second, while
    printers turning ready waited behind it. Each fetch hands the loop back."""
    j = orm.jobs
    query = sa.select(j).where(j.c.status.in_(sorted(OPEN))).execution_options(yield_per=JOBS_PER_FETCH)
    jobs: list[Job] = []
    async for rows in (await session.stream(query)).partitions():
        jobs += [job_from_row(r) for r in rows]
    return jobs


JOBS_PER_FETCH = 500
