"""Repositories: rows ↔ domain objects. Writers lock the rows they change (`FOR UPDATE`, ordered by id so
concurrent transactions cannot deadlock); the matching pass additionally holds an advisory lock."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.domain.matching import (
    READY_STATES,
    Requirement,
    SlicedFor,
    SlicedTargets,
    dispatch_limits,
    file_family,
    sliced_for,
)
from printqueue.domain.model import (
    ACTIVE,
    TERMINAL,
    WAITING,
    Assignment,
    FarmSettings,
    Job,
    JobCounts,
    LoadedMaterial,
    Material,
    OrderRecord,
    OrderSummary,
    PartEstimate,
    Printer,
)
from printqueue.domain.reconciliation import DesiredOrder, DesiredRun
from printqueue.domain.slicing import SOURCE_KINDS, Slice

_COPY_FROM = 500
MATCHING_LOCK_KEY = 0x5052_494E_5451  # "PRINTQ": one matching pass at a time across all replicas
FLEET_MODELS_LOCK_KEY = 0x534C_4943_4552  # "SLICER": the printer models slices are made for


class QueueRepository(Protocol):
    async def lock_order_key(self, order_id: str) -> None: ...
    async def get_order(self, order_id: str) -> OrderRecord | None: ...
    async def save_order(self, order: OrderRecord) -> None: ...
    async def jobs_of_order(self, order_id: str) -> list[Job]: ...
    async def jobs_already_match(self, desired: DesiredOrder, runs: Sequence[DesiredRun]) -> bool:
        """True when the order's live jobs are exactly `runs`' identities, all wanted, and the waiting ones
        already hold the values `desired` gives them: reconciling it would change nothing but the revision."""
        ...
    async def get_job(self, job_id: str) -> Job | None: ...
    async def read_job(self, job_id: str) -> Job | None: ...
    async def add_jobs(self, jobs: Sequence[Job]) -> None: ...
    async def save_jobs(self, jobs: Sequence[Job]) -> None: ...
    async def identity_taken(self, job: Job) -> bool: ...
    async def order_counts(self, order_id: str) -> OrderSummary: ...
    async def get_printer(self, printer_id: str) -> Printer | None: ...
    async def save_printer(self, printer: Printer) -> None: ...
    async def printers(self) -> list[Printer]: ...
    async def ready_printer_candidates(self, now: datetime) -> list[Printer]:
        """Printers that may be ready and are not occupied (`occupied_printers`)."""
        ...
    async def occupied_printers(self) -> set[str]: ...
    async def lock_matching(self) -> None: ...
    async def queued_candidates(self, ready: Sequence[Printer], color_tolerance: float = 0.0) -> list[Job]: ...
    async def farm_settings(self) -> FarmSettings: ...
    async def save_farm_settings(self, settings: FarmSettings, now: datetime) -> None: ...
    async def claim_queued(self, job_ids: Sequence[str]) -> list[Job]: ...
    async def expired_dispatches(self, now: datetime) -> list[str]: ...
    async def lock_slice_bases(self, bases: Sequence[str]) -> None: ...
    async def lock_fleet_models(self, *, exclusive: bool) -> None: ...
    async def waiting_bases_of_order(self, order_id: str) -> set[str]: ...
    async def slices_of(self, bases: Sequence[str]) -> list[Slice]: ...
    async def sliced_targets(self, bases: Sequence[str]) -> dict[str, frozenset[SlicedFor]]: ...
    async def read_slice(self, key: str) -> Slice | None: ...
    async def get_slice(self, key: str) -> Slice | None: ...
    async def add_slice(self, slice_: Slice) -> None: ...
    async def save_slice(self, slice_: Slice) -> None: ...
    async def slicing_jobs_of_bases(self, bases: Sequence[str]) -> list[Job]: ...
    async def unanswered_slices(self, asked_before: datetime, limit: int) -> list[Slice]: ...
    async def waiting_slice_groups(self) -> list[Job]: ...
    async def unsliced_waiting_jobs(self, job_ids: Sequence[str] | None = None) -> list[Job]: ...
    async def remember_trace(self, order_id: str, traceparent: str) -> None: ...
    async def order_traces(self, order_ids: Iterable[str]) -> dict[str, str]: ...


@functools.lru_cache(maxsize=4096)
def _shared_material(kind: str, color: str | None, profile: str | None) -> Material:
    """Jobs of one order share a handful of materials and assignments: build each once (they are frozen)."""
    return Material(type=kind, color=color, profile=profile)


@functools.lru_cache(maxsize=4096)
def _shared_assignment(mode: str, printer_id: str | None, tags: tuple[str, ...]) -> Assignment:
    return Assignment(mode=mode, printer_id=printer_id, tags=tags)  # type: ignore[arg-type]


def _material(row: Any) -> Material:
    return _shared_material(row.material_type, row.material_color, row.material_profile)


def _assignment(value: dict[str, Any]) -> Assignment:
    return _shared_assignment(value.get("mode", "next_available"), value.get("printer_id"),
                              tuple(value.get("tags") or ()))


def assignment_json(assignment: Assignment) -> dict[str, Any]:
    return {"mode": assignment.mode, "printer_id": assignment.printer_id, "tags": list(assignment.tags)}


def job_from_row(row: Any) -> Job:
    return Job(
        id=row.id,
        order_id=row.order_id,
        order_number=row.order_number,
        line_item_id=row.line_item_id,
        line_position=row.line_position,
        sku_id=row.sku_id,
        sku=row.sku,
        part_id=row.part_id,
        part_index=row.part_index,
        part_name=row.part_name,
        copy_number=row.copy_number,
        material=_material(row),
        parameters=dict(row.parameters),
        file=dict(row.file),
        assignment=_assignment(row.assignment),
        order_created_at=row.order_created_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        fulfillment_date=row.fulfillment_date,
        grams=row.grams,
        print_minutes=row.print_minutes,
        priority=row.priority,
        status=row.status,
        wanted=row.wanted,
        printer_id=row.printer_id,
        progress_percent=row.progress_percent,
        error=row.error,
        revision=row.revision,
        attempt=row.attempt,
        dispatch_attempts=row.dispatch_attempts,
        command_id=row.command_id,
        dispatch_deadline=row.dispatch_deadline,
        last_sequence=row.last_sequence,
        cancel_requested=row.cancel_requested,
        started_at=row.started_at,
        finished_at=row.finished_at,
        slice_basis=row.slice_basis,
        sliced_file=dict(row.sliced_file) if row.sliced_file is not None else None,
    )


def job_values(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "order_id": job.order_id,
        "order_number": job.order_number,
        "line_item_id": job.line_item_id,
        "line_position": job.line_position,
        "sku_id": job.sku_id,
        "sku": job.sku,
        "part_id": job.part_id,
        "part_index": job.part_index,
        "part_name": job.part_name,
        "copy_number": job.copy_number,
        "status": job.status,
        "wanted": job.wanted,
        "printer_id": job.printer_id,
        "material_type": job.material.type,
        "material_color": job.material.color,
        "material_profile": job.material.profile,
        "parameters": job.parameters,
        "file": job.file,
        "assignment": assignment_json(job.assignment),
        "priority": job.priority,
        "fulfillment_date": job.fulfillment_date,
        "order_created_at": job.order_created_at,
        "grams": job.grams,
        "print_minutes": job.print_minutes,
        "progress_percent": job.progress_percent,
        "error": job.error,
        "revision": job.revision,
        "attempt": job.attempt,
        "dispatch_attempts": job.dispatch_attempts,
        "command_id": job.command_id,
        "dispatch_deadline": job.dispatch_deadline,
        "last_sequence": job.last_sequence,
        "cancel_requested": job.cancel_requested,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "slice_basis": job.slice_basis,
        "sliced_file": job.sliced_file,
    }


COPY_COLUMNS = (
    "id", "order_id", "order_number", "line_item_id", "line_position", "sku_id", "sku", "part_id", "part_index",
    "part_name", "copy_number", "status", "wanted", "printer_id", "material_type", "material_color",
    "material_profile", "parameters", "file", "assignment", "priority", "fulfillment_date", "order_created_at",
    "grams", "print_minutes", "progress_percent", "error", "revision", "attempt", "dispatch_attempts",
    "command_id", "dispatch_deadline", "last_sequence", "cancel_requested", "created_at", "updated_at",
    "started_at", "finished_at", "slice_basis", "sliced_file",
)
"""`job_values`' columns, in its order, for COPY."""


@functools.lru_cache(maxsize=4096)
def _assignment_text(assignment: Assignment) -> str:
    """Jobs of one order share a handful of assignments (frozen, compared field by field): encode each once."""
    return json.dumps(assignment_json(assignment))


def copy_records(jobs: Iterable[Job]) -> list[tuple[Any, ...]]:
    """`job_values` of each job as a COPY record (JSON columns as text), without a dict per job."""
    dumps = json.dumps
    return [
        (
            j.id, j.order_id, j.order_number, j.line_item_id, j.line_position, j.sku_id, j.sku, j.part_id,
            j.part_index, j.part_name, j.copy_number, j.status, j.wanted, j.printer_id, j.material.type,
            j.material.color, j.material.profile, dumps(j.parameters), dumps(j.file),
            _assignment_text(j.assignment), j.priority, j.fulfillment_date, j.order_created_at, j.grams,
            j.print_minutes, j.progress_percent, j.error, j.revision, j.attempt, j.dispatch_attempts, j.command_id,
            j.dispatch_deadline, j.last_sequence, j.cancel_requested, j.created_at, j.updated_at, j.started_at,
            j.finished_at, j.slice_basis, None if j.sliced_file is None else dumps(j.sliced_file),
        )
        for j in jobs
    ]


def slice_from_row(row: Any) -> Slice:
    return Slice(
        key=row.slice_key,
        basis=row.slice_basis,
        printer_model=row.printer_model,
        fabmatic=row.fabmatic,
        source=dict(row.source),
        parameters=dict(row.parameters),
        material=_shared_material(row.material_type, None, row.material_profile),
        requested_at=row.requested_at,
        state=row.state,
        file=dict(row.file) if row.file is not None else None,
        profile=row.profile,
        print_minutes=row.print_minutes,
        grams=row.grams,
        error=row.error,
        stage=row.stage,
        answered_at=row.answered_at,
        requests=row.requests,
    )


def slice_values(slice_: Slice) -> dict[str, Any]:
    return {
        "slice_key": slice_.key,
        "slice_basis": slice_.basis,
        "printer_model": slice_.printer_model,
        "fabmatic": slice_.fabmatic,
        "source": slice_.source,
        "parameters": slice_.parameters,
        "material_type": slice_.material.type,
        "material_profile": slice_.material.profile,
        "state": slice_.state,
        "file": slice_.file,
        "profile": slice_.profile,
        "print_minutes": slice_.print_minutes,
        "grams": slice_.grams,
        "error": slice_.error,
        "stage": slice_.stage,
        "requests": slice_.requests,
        "requested_at": slice_.requested_at,
        "answered_at": slice_.answered_at,
    }


def printer_from_row(row: Any) -> Printer:
    return Printer(
        id=row.id,
        name=row.name,
        revision=row.revision,
        model=row.model,
        protocol=row.protocol,
        tags=tuple(row.tags),
        fabmatic=row.fabmatic,
        online=row.online,
        state=row.state,
        bed_clear=row.bed_clear,
        materials=tuple(
            LoadedMaterial(slot=m["slot"], type=m["type"], color=m.get("color"), profile=m.get("profile"))
            for m in row.materials
        ),
        current_job_id=row.current_job_id,
        idle_since=row.idle_since,
        deleted=row.deleted,
        avoid_until=row.avoid_until,
        dispatch_misses=row.dispatch_misses,
        updated_at=row.updated_at,
    )


def printer_values(printer: Printer) -> dict[str, Any]:
    return {
        "id": printer.id,
        "name": printer.name,
        "model": printer.model,
        "protocol": printer.protocol,
        "tags": list(printer.tags),
        "fabmatic": printer.fabmatic,
        "online": printer.online,
        "state": printer.state,
        "bed_clear": printer.bed_clear,
        "materials": [
            {"slot": m.slot, "type": m.type, "color": m.color, "profile": m.profile} for m in printer.materials
        ],
        "current_job_id": printer.current_job_id,
        "idle_since": printer.idle_since,
        "deleted": printer.deleted,
        "revision": printer.revision,
        "avoid_until": printer.avoid_until,
        "dispatch_misses": printer.dispatch_misses,
        "updated_at": printer.updated_at,
    }


_MATCHING_COLUMNS = [
    orm.jobs.c[name]
    for name in (
        "id", "order_id", "order_number", "line_item_id", "line_position", "sku_id", "sku", "part_id", "part_index",
        "part_name", "copy_number", "status", "wanted", "printer_id", "material_type", "material_color",
        "material_profile", "assignment", "priority", "fulfillment_date", "order_created_at", "grams",
        "print_minutes", "progress_percent", "error", "revision", "attempt", "dispatch_attempts", "command_id",
        "dispatch_deadline", "last_sequence", "cancel_requested", "created_at", "updated_at", "started_at",
        "finished_at", "slice_basis",
    )
]


class SqlQueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_order(self, order_id: str) -> OrderRecord | None:
        t = orm.orders
        row = (await self.session.execute(sa.select(t).where(t.c.order_id == order_id).with_for_update())).first()
        if row is None:
            return None
        return OrderRecord(
            order_id=row.order_id,
            order_number=row.order_number,
            applied_revision=row.applied_revision,
            cancelled=row.cancelled,
            summary_sequence=row.summary_sequence,
        )

    async def save_order(self, order: OrderRecord) -> None:
        values = {
            "order_id": order.order_id,
            "order_number": order.order_number,
            "applied_revision": order.applied_revision,
            "cancelled": order.cancelled,
            "summary_sequence": order.summary_sequence,
            "updated_at": sa.func.now(),
        }
        stmt = insert(orm.orders).values(**values)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=[orm.orders.c.order_id], set_={
                k: stmt.excluded[k] for k in values if k != "order_id"
            })
        )

    async def remember_trace(self, order_id: str, traceparent: str) -> None:
        t = orm.orders
        await self.session.execute(sa.update(t).where(t.c.order_id == order_id).values(trace_parent=traceparent))

    async def order_traces(self, order_ids: Iterable[str]) -> dict[str, str]:
        t = orm.orders
        wanted = sorted(set(order_ids))
        if not wanted:
            return {}
        rows = await self.session.execute(
            sa.select(t.c.order_id, t.c.trace_parent).where(t.c.order_id.in_(wanted), t.c.trace_parent.is_not(None))
        )
        return {row.order_id: row.trace_parent for row in rows}

    async def lock_order_key(self, order_id: str) -> None:
        """Serialises writers of one order even before its row exists."""
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"order:{order_id}"))))

    async def jobs_of_order(self, order_id: str) -> list[Job]:
        t = orm.jobs
        rows = await self.session.execute(
            sa.select(t).where(t.c.order_id == order_id).order_by(t.c.id).with_for_update()
        )
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

    async def get_job(self, job_id: str) -> Job | None:
        t = orm.jobs
        row = (await self.session.execute(sa.select(t).where(t.c.id == job_id).with_for_update())).first()
        return job_from_row(row) if row is not None else None

    async def read_job(self, job_id: str) -> Job | None:
        t = orm.jobs
        row = (await self.session.execute(sa.select(t).where(t.c.id == job_id))).first()
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
        if not jobs:
            return
        t = orm.jobs
        rows = [{f"b_{k}": v for k, v in job_values(j).items()} for j in sorted(jobs, key=lambda j: j.id)]
        names = [name for name in job_values(jobs[0]) if name != "id"]
        stmt = sa.update(t).where(t.c.id == sa.bindparam("b_id")).values({n: sa.bindparam(f"b_{n}") for n in names})
        connection = await self.session.connection()
        await connection.execute(stmt, rows)

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

    async def get_printer(self, printer_id: str) -> Printer | None:
        t = orm.printers
        row = (await self.session.execute(sa.select(t).where(t.c.id == printer_id).with_for_update())).first()
        return printer_from_row(row) if row is not None else None

    async def save_printer(self, printer: Printer) -> None:
        values = printer_values(printer)
        stmt = insert(orm.printers).values(**values)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=[orm.printers.c.id], set_={
                k: stmt.excluded[k] for k in values if k != "id"
            })
        )

    async def printers(self) -> list[Printer]:
        t = orm.printers
        rows = await self.session.execute(sa.select(t).where(t.c.deleted.is_(False)).order_by(t.c.name, t.c.id))
        return [printer_from_row(r) for r in rows]

    async def ready_printer_candidates(self, now: datetime) -> list[Printer]:
        """The printers that may be ready, filtered in SQL on what `readiness` checks first, so a pass over a
        large fleet reads the handful that are free rather than every printer. Occupied ones (`occupied_printers`)
        are left out here too, so a pass needs no second query over every active job."""
        t, j = orm.printers, orm.jobs
        finished = sa.select(j.c.id).where(j.c.id == t.c.current_job_id, j.c.status.in_(sorted(TERMINAL)))
        rows = await self.session.execute(
            sa.select(t)
            .where(
                t.c.deleted.is_(False),
                t.c.online.is_(True),
                t.c.bed_clear.is_(True),
                t.c.state.in_(sorted(READY_STATES)),
                sa.or_(t.c.avoid_until.is_(None), t.c.avoid_until <= now),
                ~sa.exists(
                    sa.select(j.c.id).where(j.c.printer_id == t.c.id, j.c.status.in_(sorted(ACTIVE)))
                ),
                sa.or_(t.c.current_job_id.is_(None), sa.exists(finished)),
            )
            .order_by(t.c.name, t.c.id)
        )
        return [printer_from_row(r) for r in rows]

    async def occupied_printers(self) -> set[str]:
        """Printers with an active job of ours, or reporting a current job we do not hold as finished."""
        j, p = orm.jobs, orm.printers
        active = await self.session.execute(
            sa.select(j.c.printer_id).where(j.c.status.in_(sorted(ACTIVE)), j.c.printer_id.is_not(None))
        )
        occupied = {r.printer_id for r in active}
        finished = sa.select(j.c.id).where(j.c.id == p.c.current_job_id, j.c.status.in_(sorted(TERMINAL)))
        reporting = await self.session.execute(
            sa.select(p.c.id).where(p.c.current_job_id.is_not(None), ~sa.exists(finished))
        )
        occupied.update(r.id for r in reporting)
        return occupied

    async def lock_matching(self) -> None:
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(MATCHING_LOCK_KEY)))

    async def farm_settings(self) -> FarmSettings:
        t = orm.farm_settings
        row = (await self.session.execute(sa.select(t.c.color_tolerance).where(t.c.id == 1))).first()
        return FarmSettings(color_tolerance=row.color_tolerance) if row is not None else FarmSettings()

    async def save_farm_settings(self, settings: FarmSettings, now: datetime) -> None:
        values = {"color_tolerance": settings.color_tolerance, "updated_at": now}
        stmt = insert(orm.farm_settings).values(id=1, **values)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[orm.farm_settings.c.id], set_=values))

    async def queued_candidates(self, ready: Sequence[Printer], color_tolerance: float = 0.0) -> list[Job]:
        """The queued jobs one matching pass could dispatch to `ready`: per requirement group, only its first
        (fitting printers) jobs in queue order (a colour fits within `color_tolerance`). The groups come from an
        index skip scan, so a pass costs one probe per group of the material types `ready` hold, however many
        jobs are queued."""
        types = sorted({slot.type.strip().casefold() for p in ready for slot in p.materials if slot.type.strip()})
        if not types:
            return []
        rows = (await self.session.execute(_QUEUE_GROUPS, {"types": types})).all()
        sliced = await self.sliced_targets(sorted({row[4] for row in rows if row[4]}))
        # A group's size is not read: asking for as many jobs as printers fit it, LIMIT yields what it has.
        groups = [
            (
                Requirement.of(
                    Material(k, c or None, p or None), _assignment(a), _models(b, sliced), file_family(f),
                    color_tolerance,
                ),
                len(ready),
            )
            for k, c, p, a, b, f in rows
        ]
        wanted = [
            (row, limit) for row, limit in zip(rows, dispatch_limits(groups, ready), strict=True) if limit > 0
        ]
        if not wanted:
            return []
        result = await self.session.execute(
            _QUEUE_HEADS,
            {
                "ts": [row[0] for row, _ in wanted],
                "cs": [row[1] for row, _ in wanted],
                "ps": [row[2] for row, _ in wanted],
                "as": [json.dumps(row[3]) for row, _ in wanted],
                "bs": [row[4] for row, _ in wanted],
                "fs": [row[5] for row, _ in wanted],
                "ns": [limit for _, limit in wanted],
            },
        )
        return [job_from_row(_Light(row)) for row in result]

    async def claim_queued(self, job_ids: Sequence[str]) -> list[Job]:
        t = orm.jobs
        rows = await self.session.execute(
            sa.select(t).where(t.c.id.in_(list(job_ids)), t.c.status == "queued").order_by(t.c.id).with_for_update()
        )
        return [job_from_row(r) for r in rows]

    async def expired_dispatches(self, now: datetime) -> list[str]:
        t = orm.jobs
        rows = await self.session.execute(
            sa.select(t.c.id).where(t.c.status == "assigned", t.c.dispatch_deadline < now).order_by(t.c.id)
        )
        return [r.id for r in rows]

    async def lock_slice_bases(self, bases: Sequence[str]) -> None:
        """Serialises writers of the slices of one basis and of the waiting jobs that print them. Taken in
        sorted order, after the order lock and before any job row."""
        for basis in sorted(set(bases)):
            await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"slice:{basis}"))))

    async def lock_fleet_models(self, *, exclusive: bool) -> None:
        """Jobs are sliced for the models of the printers known when they are made; a printer model that
        appears meanwhile must see those jobs. Makers of sliceable jobs hold this shared, a printer
        changing the models exclusively, so one of the two always sees the other."""
        lock = sa.func.pg_advisory_xact_lock if exclusive else sa.func.pg_advisory_xact_lock_shared
        await self.session.execute(sa.select(lock(FLEET_MODELS_LOCK_KEY)))

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

    async def read_slice(self, key: str) -> Slice | None:
        t = orm.slices
        row = (await self.session.execute(sa.select(t).where(t.c.slice_key == key))).first()
        return slice_from_row(row) if row is not None else None

    async def get_slice(self, key: str) -> Slice | None:
        t = orm.slices
        row = (await self.session.execute(sa.select(t).where(t.c.slice_key == key).with_for_update())).first()
        return slice_from_row(row) if row is not None else None

    async def add_slice(self, slice_: Slice) -> None:
        await self.session.execute(sa.insert(orm.slices).values(**slice_values(slice_)))

    async def save_slice(self, slice_: Slice) -> None:
        t = orm.slices
        values = {k: v for k, v in slice_values(slice_).items() if k != "slice_key"}
        await self.session.execute(sa.update(t).where(t.c.slice_key == slice_.key).values(values))

    async def slicing_jobs_of_bases(self, bases: Sequence[str]) -> list[Job]:
        if not bases:
            return []
        t = orm.jobs
        rows = await self.session.execute(
            sa.select(t)
            .where(t.c.status == "slicing", t.c.slice_basis.in_(sorted(set(bases))))
            .order_by(t.c.id)
            .with_for_update()
        )
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


    async def unsliced_waiting_jobs(self, job_ids: Sequence[str] | None = None) -> list[Job]:
        """Waiting jobs holding a file to slice but no slicing inputs (queued before the queue sliced);
        `job_ids` given: those of them, locked."""
        t = orm.jobs
        query = sa.select(t).where(
            t.c.status.in_(sorted(WAITING)), t.c.slice_basis.is_(None),
            t.c.file["kind"].astext.in_(sorted(SOURCE_KINDS)),
        )
        if job_ids is not None:
            query = query.where(t.c.id.in_(list(job_ids))).with_for_update()
        rows = await self.session.execute(query.order_by(t.c.id))
        return [job_from_row(r) for r in rows]


def _models(basis: str, sliced: SlicedTargets) -> frozenset[SlicedFor] | None:
    return sliced.get(basis, frozenset()) if basis else None


_FILE_KIND = "coalesce(CASE WHEN slice_basis IS NULL THEN file ->> 'kind' END, '')"
"""The kind of the pre-sliced file a job prints as it is ('' for one that prints a slice): it decides the
job's `matching.file_family`. Spelt as in the `ix_jobs_queue_order` index (migration 0005)."""
_GROUP_KEY = f"""lower(btrim(material_type)), coalesce(material_color, '')::text, coalesce(material_profile, '')::text,
    assignment, coalesce(slice_basis, '')::text, {_FILE_KIND}"""
_QUEUE_GROUPS = sa.text(
    f"""
    WITH RECURSIVE g(t, c, p, a, b, f) AS (
        SELECT first.* FROM unnest(CAST(:types AS text[])) AS wanted(t) CROSS JOIN LATERAL (
            SELECT {_GROUP_KEY} FROM jobs WHERE status = 'queued' AND lower(btrim(material_type)) = wanted.t
            ORDER BY {_GROUP_KEY} LIMIT 1
        ) AS first
        UNION ALL
        SELECT next.* FROM g CROSS JOIN LATERAL (
            SELECT {_GROUP_KEY} FROM jobs
            WHERE status = 'queued' AND lower(btrim(material_type)) = g.t
              AND (coalesce(material_color, '')::text, coalesce(material_profile, '')::text, assignment,
                   coalesce(slice_basis, '')::text, {_FILE_KIND}) > (g.c, g.p, g.a, g.b, g.f)
            ORDER BY {_GROUP_KEY} LIMIT 1
        ) AS next
    )
    SELECT t, c, p, a, b, f FROM g
    """
)
"""The distinct requirement groups of the queued jobs of the material `types` ready printers hold: a skip scan
over `ix_jobs_queue_order` (one index probe per group), not an aggregate over every queued job of those types."""
_COLUMN_LIST = ", ".join(c.name for c in _MATCHING_COLUMNS)
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
_QUEUE_HEADS = sa.text(
    f"""
    SELECT j.* FROM unnest(CAST(:ts AS text[]), CAST(:cs AS text[]), CAST(:ps AS text[]), CAST(:as AS text[]),
                           CAST(:bs AS text[]), CAST(:fs AS text[]), CAST(:ns AS int[])) AS g(t, c, p, a, b, f, n)
    CROSS JOIN LATERAL (
        SELECT {_COLUMN_LIST}, {_FILE_KIND} AS file_kind FROM jobs
        WHERE status = 'queued' AND lower(btrim(material_type)) = g.t AND coalesce(material_color, '') = g.c
          AND coalesce(material_profile, '') = g.p AND assignment = CAST(g.a AS jsonb)
          AND coalesce(slice_basis, '') = g.b AND {_FILE_KIND} = g.f
        ORDER BY (priority <> 'normal'), coalesce(fulfillment_date, DATE '9999-12-31'), order_created_at,
                 order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"
        LIMIT g.n
    ) AS j
    """
)
"""Per requirement group, its first `n` queued jobs in the order `matching.job_order` defines."""


class _Light:
    """A matching row lacks the heavy JSON columns (of the file only its kind, which matching reads); the
    jobs the pass dispatches are re-read whole."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        if name == "parameters":
            return {}
        if name == "file":
            return {"kind": self._row.file_kind} if self._row.file_kind else {}
        if name == "sliced_file":
            return None
        return getattr(self._row, name)
