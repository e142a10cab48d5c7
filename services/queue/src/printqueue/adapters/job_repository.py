"""Jobs by order and by id: reading them for reconciliation and the lifecycle, writing them in bulk, and an
order's job counts."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.adapters.mappers import COPY_COLUMNS, assignment_json, copy_records, job_from_row, job_values
from printqueue.domain.model import Job, JobCounts, OrderSummary, PartEstimate
from printqueue.domain.reconciliation import DesiredOrder, DesiredRun

_COPY_FROM = 500

_SAVED_JOBS_TABLE = "DROP TABLE IF EXISTS saved_jobs; CREATE TEMPORARY TABLE saved_jobs (LIKE jobs) ON COMMIT DROP"
"""The jobs `save_jobs` writes by COPY, for one UPDATE from them; gone with the transaction."""
_UPDATE_FROM_SAVED = (
    f"UPDATE jobs SET ({', '.join(c for c in COPY_COLUMNS if c != 'id')})"
    f" = ({', '.join(f's.{c}' for c in COPY_COLUMNS if c != 'id')}) FROM saved_jobs AS s WHERE jobs.id = s.id"
)


@functools.cache
def _update_by_id(names: tuple[str, ...]) -> sa.Update:
    """Built once per set of columns (there is one): every dispatch saves its job, and building this statement
    of some forty columns (and its cache key) at each call cost more CPU than PostgreSQL spent running it."""
    t = orm.jobs
    return sa.update(t).where(t.c.id == sa.bindparam("b_id")).values({n: sa.bindparam(f"b_{n}") for n in names})


class SqlJobRepository:
    """Jobs; a writer locks the rows it changes, ordered by id."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def jobs_of_order(self, order_id: str, *, for_update: bool = False) -> list[Job]:
        t = orm.jobs
        query = sa.select(t).where(t.c.order_id == order_id).order_by(t.c.id)
        rows = await self.session.execute(query.with_for_update() if for_update else query)
        return [job_from_row(r) for r in rows]

    async def jobs_already_match(self, desired: DesiredOrder, runs: Sequence[DesiredRun]) -> bool:
        """One set-based comparison in PostgreSQL (runs of copies joined to the order's live jobs) instead of
        reading and decoding every job. Comparisons are as strict as `reconciliation._refresh` or stricter:
        a difference only PostgreSQL sees sends the caller down the full path, which decides as before."""
        if desired.order_created_at.tzinfo is None:
            return False
        heads = [run.first for run in runs]
        row = (
            await self.session.execute(
                _JOBS_ALREADY_MATCH,
                {
                    "order_id": desired.order_id,
                    "order_number": desired.order_number,
                    "assignment": json.dumps(assignment_json(desired.assignment)),
                    "fulfillment_date": desired.fulfillment_date,
                    "order_created_at": desired.order_created_at,
                    "lines": [h.line_item_id for h in heads],
                    "parts": [h.part_id for h in heads],
                    "firsts": [h.copy_number for h in heads],
                    "lasts": [run.last_copy for run in runs],
                    "positions": [h.line_position for h in heads],
                    "sku_ids": [h.sku_id for h in heads],
                    "skus": [h.sku for h in heads],
                    "indexes": [h.part_index for h in heads],
                    "names": [h.part_name for h in heads],
                    "types": [h.material.type for h in heads],
                    "colors": [h.material.color for h in heads],
                    "profiles": [h.material.profile for h in heads],
                    "parameters": [json.dumps(h.parameters) for h in heads],
                    "files": [json.dumps(h.file) for h in heads],
                    "grams": [h.grams for h in heads],
                    "minutes": [h.print_minutes for h in heads],
                },
            )
        ).one()
        total = sum(run.size for run in runs)
        return bool(row.live == total and row.clean == total)

    async def get_job(self, job_id: str, *, for_update: bool = False) -> Job | None:
        t = orm.jobs
        query = sa.select(t).where(t.c.id == job_id)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).first()
        return job_from_row(row) if row is not None else None

    async def add_jobs(self, jobs: Sequence[Job]) -> None:
        """Big orders go in by COPY (tens of thousands of jobs in one transaction), small ones by INSERT."""
        if len(jobs) < _COPY_FROM:
            if jobs:
                await self.session.execute(sa.insert(orm.jobs), [job_values(j) for j in jobs])
            return
        connection = await self.session.connection()
        driver: Any = (await connection.get_raw_connection()).driver_connection
        await driver.copy_records_to_table("jobs", records=copy_records(jobs), columns=COPY_COLUMNS)

    async def save_jobs(self, jobs: Sequence[Job]) -> None:
        """Many jobs (a big order cancelled or edited) go by COPY into a temporary table and one UPDATE from it:
        an UPDATE per job cost SQLAlchemy's parameter processing per row, a second of CPU for 20,000."""
        if not jobs:
            return
        if len(jobs) >= _COPY_FROM and await self._save_by_copy(jobs):
            return
        rows = [{f"b_{k}": v for k, v in job_values(j).items()} for j in sorted(jobs, key=lambda j: j.id)]
        stmt = _update_by_id(tuple(name for name in job_values(jobs[0]) if name != "id"))
        connection = await self.session.connection()
        await connection.execute(stmt, rows)

    async def _save_by_copy(self, jobs: Sequence[Job]) -> bool:
        """False, having done nothing, outside a transaction (where the temporary table would not last)."""
        connection = await self.session.connection()
        driver: Any = (await connection.get_raw_connection()).driver_connection
        if not driver.is_in_transaction():
            return False
        await driver.execute(_SAVED_JOBS_TABLE)
        await driver.copy_records_to_table("saved_jobs", records=copy_records(jobs), columns=COPY_COLUMNS)
        await driver.execute(_UPDATE_FROM_SAVED)
        return True

    async def identity_taken(self, job: Job) -> bool:
        t = orm.jobs
        row = (
            await self.session.execute(
                sa.select(t.c.id).where(
                    t.c.order_id == job.order_id,
                    t.c.line_item_id == job.line_item_id,
                    t.c.part_id == job.part_id,
                    t.c.copy_number == job.copy_number,
                    t.c.status != "cancelled",
                    t.c.id != job.id,
                )
            )
        ).first()
        return row is not None

    async def order_counts(self, order_id: str) -> OrderSummary:
        """Counts of the current job of every identity (a cancelled job replaced by a newer one is history)."""
        t = orm.jobs
        current = (
            sa.select(t.c.line_item_id, t.c.status)
            .where(t.c.order_id == order_id)
            .ext(distinct_on(t.c.line_item_id, t.c.part_id, t.c.copy_number))
            .order_by(
                t.c.line_item_id, t.c.part_id, t.c.copy_number, (t.c.status == "cancelled"),
                t.c.created_at.desc(), t.c.id.desc(),
            )
            .subquery()
        )
        rows = await self.session.execute(
            sa.select(current.c.line_item_id, current.c.status, sa.func.count()).group_by(
                current.c.line_item_id, current.c.status
            )
        )
        summary = OrderSummary()
        for line_item_id, status, count in rows:
            summary.line_items.setdefault(line_item_id, JobCounts()).add(status, count)
            summary.totals.add(status, count)
        summary.estimates = await self._order_estimates(order_id)
        return summary

    async def _order_estimates(self, order_id: str) -> dict[str, list[PartEstimate]]:
        """Sliced figures per part that needs slicing, over its live jobs (at most one per identity)."""
        t = orm.jobs
        grams = sa.cast(t.c.sliced_file["grams"].astext, sa.Float)
        minutes = sa.case((grams.is_(None), None), else_=sa.cast(t.c.sliced_file["print_minutes"].astext, sa.Float))
        rows = await self.session.execute(
            sa.select(
                t.c.line_item_id,
                t.c.part_id,
                sa.func.count(),
                sa.func.count(grams),
                sa.func.coalesce(sa.func.sum(grams), 0.0),
                sa.func.coalesce(sa.func.sum(minutes), 0.0),
            )
            .where(t.c.order_id == order_id, t.c.status != "cancelled", t.c.slice_basis.is_not(None))
            .group_by(t.c.line_item_id, t.c.part_id)
            .order_by(t.c.line_item_id, t.c.part_id)
        )
        estimates: dict[str, list[PartEstimate]] = {}
        for line_item_id, part_id, jobs, sliced, total_grams, total_minutes in rows:
            estimates.setdefault(line_item_id, []).append(
                PartEstimate(part_id, int(jobs), int(sliced), float(total_grams), float(total_minutes))
            )
        return estimates


_JOBS_ALREADY_MATCH = sa.text(
    """
    WITH d AS (
        SELECT * FROM unnest(
            CAST(:lines AS text[]), CAST(:parts AS text[]), CAST(:firsts AS int[]), CAST(:lasts AS int[]),
            CAST(:positions AS int[]), CAST(:sku_ids AS text[]), CAST(:skus AS text[]), CAST(:indexes AS int[]),
            CAST(:names AS text[]), CAST(:types AS text[]), CAST(:colors AS text[]), CAST(:profiles AS text[]),
            CAST(:parameters AS text[]), CAST(:files AS text[]), CAST(:grams AS float8[]), CAST(:minutes AS float8[])
        ) AS d(line_item_id, part_id, first_copy, last_copy, line_position, sku_id, sku, part_index, part_name,
               material_type, material_color, material_profile, parameters, file, grams, print_minutes)
    )
    SELECT count(*) AS live,
           count(*) FILTER (WHERE d.line_item_id IS NOT NULL AND j.wanted AND (
               j.status NOT IN ('queued', 'slicing') OR (
                   j.order_number = :order_number AND j.assignment = CAST(:assignment AS jsonb)
                   AND j.fulfillment_date IS NOT DISTINCT FROM CAST(:fulfillment_date AS date)
                   AND j.order_created_at = CAST(:order_created_at AS timestamptz)
                   AND j.line_position = d.line_position AND j.sku_id = d.sku_id AND j.sku = d.sku
                   AND j.part_index = d.part_index AND j.part_name = d.part_name
                   AND j.material_type = d.material_type
                   AND j.material_color IS NOT DISTINCT FROM d.material_color
                   AND j.material_profile IS NOT DISTINCT FROM d.material_profile
                   AND j.parameters = CAST(d.parameters AS jsonb) AND j.file = CAST(d.file AS jsonb)
                   AND j.grams IS NOT DISTINCT FROM d.grams AND j.print_minutes IS NOT DISTINCT FROM d.print_minutes
               )
           )) AS clean
    FROM jobs AS j
    LEFT JOIN d ON j.line_item_id = d.line_item_id AND j.part_id = d.part_id
               AND j.copy_number BETWEEN d.first_copy AND d.last_copy
    WHERE j.order_id = :order_id AND j.status <> 'cancelled'
    """
)
"""Of an order's live jobs: how many there are, and how many reconciling `d` would leave alone."""
