"""What a forecast reads: every open job, the fleet, and the printer models slices exist or are being made for."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.adapters.repository import job_from_row, printer_from_row
from printqueue.domain.forecast import OPEN
from printqueue.domain.matching import SlicedTargets
from printqueue.domain.model import Job, Printer, Target


@dataclass
class ForecastInputs:
    jobs: list[Job]
    printers: list[Printer]
    sliced: SlicedTargets


async def load_forecast_inputs(session: AsyncSession) -> ForecastInputs:
    """Three queries whatever the size. A slice still being made counts as a target: the job waiting for it
    will print on a printer of that model once it is done."""
    j, p, s = orm.jobs, orm.printers, orm.slices
    jobs = [job_from_row(r) for r in await session.execute(sa.select(j).where(j.c.status.in_(sorted(OPEN))))]
    printers = [printer_from_row(r) for r in await session.execute(sa.select(p).where(p.c.deleted.is_(False)))]
    bases = sorted({job.slice_basis for job in jobs if job.slice_basis is not None})
    found: dict[str, set[Target]] = {}
    if bases:
        rows = await session.execute(
            sa.select(s.c.slice_basis, s.c.printer_model, s.c.fabmatic).where(
                s.c.slice_basis.in_(bases), s.c.state.in_(["requested", "completed"])
            )
        )
        for basis, model, fabmatic in rows:
            found.setdefault(basis, set()).add((model, fabmatic))
    return ForecastInputs(jobs, printers, {basis: frozenset(targets) for basis, targets in found.items()})
