"""What a forecast reads: every open job, the fleet, and the printer models slices exist or are being made for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.adapters.farm_settings_repository import SqlFarmSettingsRepository
from printqueue.adapters.mappers import job_from_row, printer_from_row, slice_from_row
from printqueue.domain.forecast import OPEN
from printqueue.domain.matching import FileFamily, SlicedFor, SlicedTargets, completed_slices
from printqueue.domain.model import Job, Printer
from servicekit.driver_statements import DriverStatement

FAMILIES: tuple[FileFamily, ...] = get_args(FileFamily)


@dataclass
class ForecastInputs:
    jobs: list[Job]
    printers: list[Printer]
    sliced: SlicedTargets
    color_tolerance: float = 0.0


async def load_forecast_inputs(session: AsyncSession, known: OpenJobs | None = None) -> ForecastInputs:
    """Four queries whatever the size. A slice still being made counts too: the job waiting for it will
    print on a printer of that model once it is done (the slicer makes the file that model's kind prints).
    With `known` (the jobs an earlier forecast read), only jobs changed since are read whole."""
    p, s = orm.printers, orm.slices
    printers = [printer_from_row(r) for r in await session.execute(sa.select(p).where(p.c.deleted.is_(False)))]
    jobs = await (known or OpenJobs()).read(session)
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


class OpenJobs:
    """The open jobs as the last read left them, each with its row version (PostgreSQL's `xmin`, new with every
    committed change of the row whoever wrote it): a forecast reads every open job's id and version, then whole
    only the rows that are new or changed. Reading and decoding 20,000 whole rows cost about a second of CPU
    per forecast, and a farm whose printers keep turning ready asks for one every second or so. The jobs it
    hands out are shared between forecasts, which only read them."""

    def __init__(self) -> None:
        self._jobs: dict[str, tuple[str, Job]] = {}

    async def read(self, session: AsyncSession) -> list[Job]:
        versions = {row[0]: row[1] for row in await _OPEN_VERSIONS.fetch(session, {"statuses": sorted(OPEN)})}
        before = self._jobs
        changed = [job_id for job_id, version in versions.items() if before.get(job_id, ("", None))[0] != version]
        current = {job_id: before[job_id] for job_id in versions.keys() - set(changed)}
        query = sa.select(orm.jobs, _XMIN).where(orm.jobs.c.id == sa.any_(sa.bindparam("ids", type_=_TEXTS)))
        for start in range(0, len(changed), JOBS_PER_FETCH):
            # A fetch at a time, handing the event loop back between them: the consumers share this process, and
            # turning a whole queue's rows into jobs at once held a printer turning ready behind it.
            rows = await session.execute(query, {"ids": changed[start : start + JOBS_PER_FETCH]})
            for row in rows:
                current[row.id] = (row.row_version, job_from_row(row))
        self._jobs = current
        return [job for _, job in current.values()]


JOBS_PER_FETCH = 500
_XMIN: sa.Label[str] = sa.literal_column("jobs.xmin::text").label("row_version")
_TEXTS = ARRAY(sa.Text)
_OPEN_VERSIONS = DriverStatement(
    sa.text("SELECT id, xmin::text FROM jobs WHERE status = ANY(CAST(:statuses AS text[]))")
)
