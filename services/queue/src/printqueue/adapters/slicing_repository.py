"""Slices (one per slicing inputs and printer target) and the waiting jobs that print them; the advisory
lock per slicing basis that serialises their writers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.adapters.mappers import job_from_row, slice_from_row, slice_values
from printqueue.domain.matching import SlicedFor, sliced_for
from printqueue.domain.model import WAITING, Job
from printqueue.domain.slicing import SOURCE_KINDS, Slice


class SqlSlicingRepository:
    """Slices and the jobs waiting for them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_slice_bases(self, bases: Sequence[str]) -> None:
        """Serialises writers of the slices of one basis and of the waiting jobs that print them. Taken in
        sorted order, after the order lock and before any job row."""
        for basis in sorted(set(bases)):
            await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"slice:{basis}"))))

    async def waiting_bases_of_order(self, order_id: str) -> set[str]:
        t = orm.jobs
        rows = await self.session.execute(
            sa.select(t.c.slice_basis)
            .where(t.c.order_id == order_id, t.c.status.in_(sorted(WAITING)), t.c.slice_basis.is_not(None))
            .distinct()
        )
        return {r.slice_basis for r in rows}

    async def slices_of(self, bases: Sequence[str]) -> list[Slice]:
        if not bases:
            return []
        t = orm.slices
        rows = await self.session.execute(
            sa.select(t).where(t.c.slice_basis.in_(sorted(set(bases)))).order_by(t.c.slice_key)
        )
        return [slice_from_row(r) for r in rows]

    async def sliced_targets(self, bases: Sequence[str]) -> dict[str, frozenset[SlicedFor]]:
        if not bases:
            return {}
        t = orm.slices
        rows = await self.session.execute(
            sa.select(t.c.slice_basis, t.c.printer_model, t.c.fabmatic, t.c.file["kind"].astext).where(
                t.c.slice_basis.in_(sorted(set(bases))), t.c.state == "completed"
            )
        )
        found: dict[str, set[SlicedFor]] = {}
        for basis, model, fabmatic, kind in rows:
            usable = sliced_for((model, fabmatic), {"kind": kind})
            if usable is not None:
                found.setdefault(basis, set()).add(usable)
        return {basis: frozenset(targets) for basis, targets in found.items()}

    async def get_slice(self, key: str, *, for_update: bool = False) -> Slice | None:
        t = orm.slices
        query = sa.select(t).where(t.c.slice_key == key)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).first()
        return slice_from_row(row) if row is not None else None

    async def add_slice(self, slice_: Slice) -> None:
        await self.session.execute(sa.insert(orm.slices).values(**slice_values(slice_)))

    async def save_slice(self, slice_: Slice) -> None:
        t = orm.slices
        values = {k: v for k, v in slice_values(slice_).items() if k != "slice_key"}
        await self.session.execute(sa.update(t).where(t.c.slice_key == slice_.key).values(values))

    async def slicing_jobs_of_bases(self, bases: Sequence[str], *, for_update: bool = False) -> list[Job]:
        if not bases:
            return []
        t = orm.jobs
        query = sa.select(t).where(t.c.status == "slicing", t.c.slice_basis.in_(sorted(set(bases)))).order_by(t.c.id)
        rows = await self.session.execute(query.with_for_update() if for_update else query)
        return [job_from_row(r) for r in rows]

    async def unanswered_slices(self, asked_before: datetime, limit: int) -> list[Slice]:
        """Slices asked for at or before `asked_before`, still unanswered, that a `slicing` job waits for;
        oldest first."""
        t, j = orm.slices, orm.jobs
        waited_for = sa.select(j.c.slice_basis).where(j.c.status == "slicing", j.c.slice_basis == t.c.slice_basis)
        rows = await self.session.execute(
            sa.select(t)
            .where(t.c.state == "requested", t.c.requested_at <= asked_before, waited_for.exists())
            .order_by(t.c.requested_at, t.c.slice_key)
            .limit(limit)
        )
        return [slice_from_row(r) for r in rows]

    async def waiting_slice_groups(self) -> list[Job]:
        """One waiting job per (slicing inputs, assignment): what a new printer model may need slices for."""
        t = orm.jobs
        firsts = (
            sa.select(sa.func.min(t.c.id))
            .where(t.c.status.in_(sorted(WAITING)), t.c.slice_basis.is_not(None))
            .group_by(t.c.slice_basis, t.c.assignment)
        )
        rows = await self.session.execute(sa.select(t).where(t.c.id.in_(firsts.scalar_subquery())).order_by(t.c.id))
        return [job_from_row(r) for r in rows]

    async def unsliced_waiting_jobs(
        self, job_ids: Sequence[str] | None = None, *, for_update: bool = False
    ) -> list[Job]:
        """Waiting jobs holding a file to slice but no slicing inputs (queued before the queue sliced);
        `job_ids` given: those of them."""
        t = orm.jobs
        query = sa.select(t).where(
            t.c.status.in_(sorted(WAITING)), t.c.slice_basis.is_(None),
            t.c.file["kind"].astext.in_(sorted(SOURCE_KINDS)),
        )
        if job_ids is not None:
            query = query.where(t.c.id.in_(list(job_ids)))
        if for_update:
            query = query.with_for_update()
        rows = await self.session.execute(query.order_by(t.c.id))
        return [job_from_row(r) for r in rows]
