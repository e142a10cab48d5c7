"""Read side for the HTTP API: job lists with keyset pagination, the material demand of the queue and the
jobs farm analytics reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.adapters.mappers import job_from_row
from printqueue.domain.analytics import JobFact
from printqueue.domain.matching import Requirement, fitting_slots
from printqueue.domain.model import WAITING, Assignment, Job, Material, Printer, rgb

JobSort = Literal["priority", "order_number", "created_at", "-created_at"]
_Kind = Literal["int", "str", "date", "datetime"]

_t = orm.jobs
_SORTS: dict[str, tuple[bool, list[tuple[sa.ColumnElement[Any], _Kind]]]] = {
    "priority": (
        False,
        [
            (sa.case((_t.c.priority == "normal", 0), else_=1), "int"),
            (sa.func.coalesce(_t.c.fulfillment_date, sa.cast(sa.literal("9999-12-31"), sa.Date)), "date"),
            (_t.c.order_created_at, "datetime"),
            (_t.c.order_id, "str"),
            (_t.c.line_position, "int"),
            (_t.c.part_index, "int"),
            (_t.c.copy_number, "int"),
            (_t.c.id, "str"),
        ],
    ),
    "order_number": (False, [(_t.c.order_number, "str"), (_t.c.id, "str")]),
    "created_at": (False, [(_t.c.created_at, "datetime"), (_t.c.id, "str")]),
    "-created_at": (True, [(_t.c.created_at, "datetime"), (_t.c.id, "str")]),
}


@dataclass(frozen=True)
class JobFilter:
    order_id: str | None = None
    order_number: str | None = None
    statuses: Sequence[str] = ()
    printer_id: str | None = None


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


_INT4 = range(-(2**31), 2**31)


def _decode(value: Any, kind: _Kind) -> Any:
    """A cursor's key back in its column's type; ValueError for anything this listing never wrote."""
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or value not in _INT4:
            raise ValueError("not an integer key of this listing")
        return value
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "datetime":
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has its offset")
        return moment
    if not isinstance(value, str):
        raise ValueError("not a text key of this listing")
    return value


async def list_jobs(
    session: AsyncSession, where: JobFilter, sort: JobSort, limit: int, after: list[Any] | None
) -> tuple[list[Job], list[Any] | None]:
    """A page of jobs and the sort key of its last row (the next cursor) when more follow."""
    descending, keys = _SORTS[sort]
    exprs = [expr for expr, _ in keys]
    query = sa.select(_t, *[expr.label(f"k{i}") for i, expr in enumerate(exprs)])
    if where.order_id:
        query = query.where(_t.c.order_id == where.order_id)
    if where.order_number:
        query = query.where(_t.c.order_number == where.order_number)
    if where.statuses:
        query = query.where(_t.c.status.in_(list(where.statuses)))
    if where.printer_id:
        query = query.where(_t.c.printer_id == where.printer_id)
    if after is not None:
        if len(after) != len(keys):
            raise ValueError("cursor does not fit this sort")
        bound = sa.tuple_(*[sa.literal(_decode(v, kind)) for v, (_, kind) in zip(after, keys, strict=True)])
        query = query.where(sa.tuple_(*exprs) < bound if descending else sa.tuple_(*exprs) > bound)
    query = query.order_by(*[e.desc() if descending else e for e in exprs]).limit(limit + 1)
    rows = (await session.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = [_encode(getattr(rows[-1], f"k{i}")) for i in range(len(keys))] if more and rows else None
    return [job_from_row(r) for r in rows], cursor


@dataclass
class MaterialDemand:
    type: str
    color: str | None
    jobs_waiting: int = 0
    grams_waiting: float = 0.0
    printers_loaded: list[str] = field(default_factory=list)
    slots_loaded: list[tuple[str, int]] = field(default_factory=list)
    """(printer id, slot) of every spool that serves these jobs: what a load plan must not unload."""


async def material_demand(
    session: AsyncSession, printers: Sequence[Printer], color_tolerance: float = 0.0
) -> list[MaterialDemand]:
    """Waiting jobs (queued or slicing) per material (type case-insensitive, colour by RGB) against the
    printers holding it, a colour within `color_tolerance` (ΔE) as matching does. A job that is sliced
    counts its slice's estimate (the slicer's figure is the real one), any other the part's declared weight."""
    sliced_grams = sa.cast(_t.c.sliced_file["grams"].astext, sa.Float)
    rows = await session.execute(
        sa.select(
            _t.c.material_type,
            _t.c.material_color,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.func.coalesce(sliced_grams, _t.c.grams)), 0.0),
        )
        .where(_t.c.status.in_(sorted(WAITING)))
        .group_by(_t.c.material_type, _t.c.material_color)
    )
    demand: dict[tuple[str, str | None], MaterialDemand] = {}
    for material_type, color, count, grams in rows:
        colour = rgb(color)
        key = (material_type.strip().casefold(), colour)
        item = demand.get(key)
        if item is None:
            item = demand[key] = MaterialDemand(type=material_type.strip(), color=f"#{colour}" if colour else None)
        item.jobs_waiting += int(count)
        item.grams_waiting += float(grams)
    for item in demand.values():
        requirement = Requirement.of(Material(item.type, item.color), Assignment(), color_tolerance=color_tolerance)
        item.slots_loaded = [
            (p.id, slot) for p in printers if not p.deleted for slot in fitting_slots(p, requirement)
        ]
        item.printers_loaded = list(dict.fromkeys(printer_id for printer_id, _ in item.slots_loaded))
    return sorted(demand.values(), key=lambda d: (-d.jobs_waiting, d.type.casefold(), d.color or ""))


async def job_facts(session: AsyncSession, since: datetime, until: datetime) -> list[JobFact]:
    """Every job of every order with a job started or finished in [since, until): the window's own jobs
    and, for an order's click-to-complete time, its older ones too."""
    active = (
        sa.select(_t.c.order_id)
        .where(
            sa.or_(
                sa.and_(_t.c.finished_at >= since, _t.c.finished_at < until),
                sa.and_(_t.c.started_at >= since, _t.c.started_at < until),
            )
        )
        .distinct()
    )
    sliced_grams = sa.cast(_t.c.sliced_file["grams"].astext, sa.Float)
    rows = await session.execute(
        sa.select(
            _t.c.id,
            _t.c.order_id,
            _t.c.order_number,
            _t.c.status,
            _t.c.material_type,
            _t.c.created_at,
            _t.c.started_at,
            _t.c.finished_at,
            sa.func.coalesce(_t.c.grams, sliced_grams).label("grams"),
            _t.c.error,
        ).where(_t.c.order_id.in_(active))
    )
    return [
        JobFact(
            id=r.id,
            order_id=r.order_id,
            order_number=r.order_number,
            status=r.status,
            material_type=r.material_type,
            created_at=r.created_at,
            started_at=r.started_at,
            finished_at=r.finished_at,
            grams=r.grams,
            error=r.error,
        )
        for r in rows
    ]
