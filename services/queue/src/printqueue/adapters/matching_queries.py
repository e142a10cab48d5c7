"""What a matching pass reads, set-based so its cost does not grow with the queue: the ready printers, the
head of each requirement group of queued jobs (in `matching.job_order`), the dispatches to claim or expire;
and the advisory lock that lets one pass run at a time."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.adapters.farm_settings_repository import READ_COLOR_TOLERANCE, farm_settings_of
from printqueue.adapters.mappers import (
    PRINTER_RECORD_COLUMNS,
    assignment_from_text,
    job_record_columns,
    jobs_from_records,
    material_of,
    printer_from_row,
    printer_values,
    printers_from_records,
)
from printqueue.adapters.printer_repository import UPSERT
from printqueue.adapters.slicing_repository import SqlSlicingRepository
from printqueue.domain.matching import (
    READY_STATES,
    Candidates,
    Fleet,
    Requirement,
    SlicedFor,
    SlicedTargets,
    dispatch_limits,
    file_family,
    sliced_for,
)
from printqueue.domain.model import ACTIVE, TERMINAL, FarmSettings, Job, Printer
from servicekit.driver_statements import DriverStatement

MATCHING_LOCK_KEY = 0x5052_494E_5451  # "PRINTQ": one matching pass at a time across all replicas

class SqlMatchingQueries:
    """The reads of a matching pass."""

    _found_groups: tuple[list[str], Sequence[Any]] | None = None
    """The groups a `queued_groups` with `spread` found, for the reload right after it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_matching(self) -> FarmSettings:
        """Takes the pass's lock and returns the farm settings, read in the same round trip: the pass needs them
        next. (The statement's snapshot may predate a wait for the lock; passes never write the settings, and an
        operator's change made meanwhile was as concurrent with the pass as one made a moment later.)"""
        return farm_settings_of((await self.session.execute(_LOCK_MATCHING)).one()[1])

    async def try_lock_matching_for(self, printer_id: str, now: datetime) -> tuple[FarmSettings, list[Printer]] | None:
        """`lock_matching` without waiting, and `ready_printer_candidates(now, printer_id)` once it is taken, in one
        round trip (a printer turning ready runs both before its start command). None while another transaction
        holds the lock (a pass under way)."""
        row = (await self.session.execute(_TRY_LOCK_MATCHING_FOR, {"now": now, "printer_id": printer_id})).one()
        if not row.matching_locked:
            return None
        return farm_settings_of(row.color_tolerance), [printer_from_row(row)] if row.id is not None else []

    async def save_printer_and_try_lock_matching(self, printer: Printer) -> tuple[FarmSettings, bool] | None:
        """`save_printer` (its row locked by the caller), then `try_lock_matching_for` that printer, in one round
        trip: the farm settings and whether no job holds the printer (none of ours active on it, the job it reports
        none or finished), or None while another transaction holds the lock. The printer as saved is the rest of
        what the candidate query checks (`readiness`); it cannot be read back here (a statement's reads do not see
        its own writes)."""
        row = (await self.session.execute(_SAVE_PRINTER_AND_TRY_LOCK_MATCHING, printer_values(printer))).one()
        return (farm_settings_of(row.color_tolerance), bool(row.free)) if row.matching_locked else None

    async def ready_printer_candidates(self, now: datetime, printer_id: str | None = None) -> list[Printer]:
        """The printers that may be ready, filtered in SQL on what `readiness` checks first, so a pass over a
        large fleet reads the handful that are free rather than every printer. Occupied ones (`occupied_printers`)
        are left out here too, so a pass needs no second query over every active job. With `printer_id`, that
        printer if it is one of them."""
        if printer_id is None:
            return printers_from_records(await self.session.execute(_READY_PRINTER_CANDIDATES, {"now": now}))
        rows = await self.session.execute(_READY_PRINTER_CANDIDATE, {"now": now, "printer_id": printer_id})
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

    async def queued_groups(
        self, fleet: Fleet, color_tolerance: float = 0.0, spread: float | None = None
    ) -> tuple[Candidates, list[list[str]]]:
        """What one matching pass could dispatch to the `fleet`'s ready printers, as `matching.decide` takes it:
        the requirement groups of the queued jobs (a colour fits within `color_tolerance`), and each group's
        first jobs, at most as many as printers fit it, merged in queue order by PostgreSQL. The groups come
        from an index skip scan, so a pass costs one probe per group of the material types the fleet holds,
        however many jobs are queued; a job is read as its group and id only (the pass re-reads whole the jobs
        it dispatches: `claim_queued`). With `spread`, a group loads at most `spread` times its share of the
        ready printers (at least 16), since a pass dispatches each printer once, however many printers fit
        each group. Also returns, per group so cut short, the ids it loaded: if a pass dispatches them all,
        the group's next jobs could have gone too and the pass must load again without `spread`. That reload
        (the call without `spread` right after one with it, for the same types) reuses the groups the first
        call found instead of probing for them again (200,000 queued jobs: some 20,000 groups, as long to find
        as the rest of a 1,000-printer pass)."""
        types = sorted(fleet.by_type)
        if not types:
            return ([], []), []
        if len(fleet.printers) == 1:
            self._found_groups = None
            return await self._queued_heads_for_one(fleet, types, color_tolerance), []
        found, self._found_groups = self._found_groups, None
        if spread is None and found is not None and found[0] == types:
            rows = found[1]
        else:
            holders = sorted({printer.id for printer in fleet.printers})
            if len(holders) <= PINNED_PROBES_UP_TO:
                statement, values = _QUEUE_GROUPS_PINNED_TO, {"types": types, "holders": holders}
            else:
                statement, values = _QUEUE_GROUPS, {"types": types}
            rows = (await self.session.execute(statement, values)).all()
            if spread is not None:
                self._found_groups = (types, rows)
        sliced = await SqlSlicingRepository(self.session).sliced_targets(sorted({row[4] for row in rows if row[4]}))
        ready = len(fleet.printers)
        # A group's size is not read: asking for as many jobs as printers fit it, LIMIT yields what it has.
        assignments = [assignment_from_text(row[3]) for row in rows]
        groups = [
            Requirement.of(
                material_of(k, c or None, p or None), assignment, _models(b, sliced), file_family(f), color_tolerance
            )
            for (k, c, p, _, b, f), assignment in zip(rows, assignments, strict=True)
        ]
        limits = dispatch_limits([(requirement, ready) for requirement in groups], fleet)
        wanted = [
            (row, group, limit, assignment.printer_id if assignment.mode == "printer" else None)
            for row, group, limit, assignment in zip(rows, groups, limits, assignments, strict=True)
            if limit
        ]
        if not wanted:
            return ([], []), []
        cap = ready
        if spread is not None:
            shared_by = sum(1 for _, _, limit, _ in wanted if limit > 1) or 1
            cap = max(16, math.ceil(spread * ready / shared_by))
        result = await self.session.execute(
            _QUEUE_HEADS,
            {
                "ts": [row[0] for row, _, _, _ in wanted],
                "cs": [row[1] for row, _, _, _ in wanted],
                "ps": [row[2] for row, _, _, _ in wanted],
                "as": [row[3] for row, _, _, _ in wanted],
                "bs": [row[4] for row, _, _, _ in wanted],
                "fs": [row[5] for row, _, _, _ in wanted],
                "os": [holder for _, _, _, holder in wanted],
                "ns": [min(limit, cap) for _, _, limit, _ in wanted],
            },
        )
        queue = [(group - 1, job_id) for group, job_id in result]
        loaded: dict[int, list[str]] = {}
        for group, job_id in queue:
            loaded.setdefault(group, []).append(job_id)
        cut = [ids for group, ids in loaded.items() if wanted[group][2] > cap and len(ids) == cap]
        return ([requirement for _, requirement, _, _ in wanted], queue), cut

    async def _queued_heads_for_one(self, fleet: Fleet, types: list[str], color_tolerance: float) -> Candidates:
        """`queued_groups` for one ready printer (one turning ready), in one round trip instead of two or three: a
        printer takes at most one job, so every group's head is all a pass could dispatch from it. The statement
        reads each group's head and its completed slices with the groups; the groups the printer cannot fit are
        then left out, as `dispatch_limits` says, as the heads query leaves them out for a bigger fleet."""
        holders = [printer.id for printer in fleet.printers]
        rows = await _QUEUE_GROUP_HEADS.fetch(self.session, {"types": types, "holders": holders})
        sliced: dict[str, frozenset[SlicedFor]] = {}
        for row in rows:
            basis, models, fabmatics, kinds = row[4], row[7], row[8], row[9]
            if basis and basis not in sliced and models:
                usable = (sliced_for((m, fm), {"kind": k}) for m, fm, k in zip(models, fabmatics, kinds, strict=True))
                sliced[basis] = frozenset(u for u in usable if u is not None)
        groups = [
            Requirement.of(
                material_of(k, c or None, p or None), assignment_from_text(a), _models(b, sliced), file_family(f),
                color_tolerance,
            )
            for k, c, p, a, b, f, *_ in rows
        ]
        limits = dispatch_limits([(requirement, 1) for requirement in groups], fleet)
        wanted = [(row[6], group) for row, group, limit in zip(rows, groups, limits, strict=True) if limit]
        return [group for _, group in wanted], [(index, job_id) for index, (job_id, _) in enumerate(wanted)]

    async def claim_queued(
        self, job_ids: Sequence[str], *, skip_locked: bool = False
    ) -> tuple[list[Job], dict[str, str]]:
        """The queued ones of `job_ids`, whole and locked in id order, in that order (a pass's thousands of ids
        go as one array); with `skip_locked`, not those another transaction holds (instead of waiting for it).
        Also, by order id, the trace each of their orders remembers (`remember_trace`), read in the same
        statement: their dispatches continue those traces."""
        query = _CLAIM_QUEUED_SKIP_LOCKED if skip_locked else _CLAIM_QUEUED
        rows = await query.fetch(self.session, {"job_ids": list(set(job_ids))})
        jobs = jobs_from_records(rows)
        return jobs, {job.order_id: row[-1] for job, row in zip(jobs, rows, strict=True) if row[-1] is not None}

    async def save_dispatched(self, jobs: Sequence[Job]) -> None:
        """Write what `lifecycle.dispatch` changed on the jobs a pass claimed (their other columns are as claimed,
        locked): one UPDATE from arrays for every dispatch of the pass, not a statement per job."""
        if not jobs:
            return
        ordered = sorted(jobs, key=lambda j: j.id)
        await self.session.execute(
            _SAVE_DISPATCHED,
            {
                "ids": [j.id for j in ordered],
                "statuses": [j.status for j in ordered],
                "printers": [j.printer_id for j in ordered],
                "commands": [j.command_id for j in ordered],
                "attempts": [j.dispatch_attempts for j in ordered],
                "deadlines": [j.dispatch_deadline for j in ordered],
                "sequences": [j.last_sequence for j in ordered],
                "progress": [j.progress_percent for j in ordered],
                "revisions": [j.revision for j in ordered],
                "updated": [j.updated_at for j in ordered],
                "files": [json.dumps(j.sliced_file) if j.sliced_file is not None else None for j in ordered],
            },
        )

    async def expired_dispatches(self, now: datetime) -> list[str]:
        rows = await self.session.execute(_EXPIRED_DISPATCHES, {"now": now})
        return [r.id for r in rows]


# The pass's fixed statements, built once: building them (and their cache keys) at each pass cost more CPU
# than PostgreSQL spent running them, on the path from a printer turning ready to its StartPrint.
_LOCK_MATCHING = sa.select(
    sa.func.pg_advisory_xact_lock(MATCHING_LOCK_KEY),
    READ_COLOR_TOLERANCE.scalar_subquery(),
)


def _ready_printer_candidates(*, one: bool) -> sa.Select[Any]:
    """The whole fleet's (`one=False`) or one printer's: see `_READY_PRINTER_CANDIDATES`. One printer's writes the
    state lists into its SQL: as expanding parameters SQLAlchemy rendered them into the statement's text at every
    execution, CPU on the path of a printer turning ready."""
    t, j = orm.printers, orm.jobs
    now = sa.bindparam("now", type_=t.c.avoid_until.type)

    def states(names: frozenset[str]) -> list[Any]:
        return [sa.literal_column(f"'{name}'") for name in sorted(names)] if one else sorted(names)

    active = (j.c.status.in_(states(ACTIVE)), j.c.printer_id.is_not(None))
    if one:
        free = ~sa.exists(sa.select(j.c.id).where(j.c.printer_id == t.c.id, *active))
    else:
        free = t.c.id.not_in(sa.select(j.c.printer_id).where(*active))
    reported_status = sa.select(j.c.status).where(j.c.id == t.c.current_job_id).scalar_subquery()
    # The whole fleet's as `printers_from_records` reads it; one printer's by name (`try_lock_matching_for` reads
    # it as a lateral subquery).
    columns: list[sa.ColumnElement[Any]] = (
        list(t.c) if one else [sa.literal_column(f"printers.{c}") for c in PRINTER_RECORD_COLUMNS]
    )
    query = (
        sa.select(*columns)
        .select_from(t)
        .where(
            t.c.deleted.is_(False),
            t.c.online.is_(True),
            t.c.bed_clear.is_(True),
            t.c.state.in_(states(READY_STATES)),
            sa.or_(t.c.avoid_until.is_(None), t.c.avoid_until <= now),
            free,
            sa.or_(t.c.current_job_id.is_(None), reported_status.in_(states(TERMINAL))),
        )
        .order_by(t.c.name, t.c.id)
    )
    return query.where(t.c.id == sa.bindparam("printer_id")) if one else query


_READY_PRINTER_CANDIDATES = _ready_printer_candidates(one=False)
"""Shaped so that no plan can compare every candidate with every active job: the occupied printers are one
hashed set (`NOT IN` a subquery: PostgreSQL hashes it, at most one active job per printer), and a reported
job's status is one primary-key probe per printer that reports one (a scalar subquery stays per row). As
`NOT EXISTS` joins, a plan made on statistics from before a dispatch wave (the active-printer index
estimated at one row) nested the two loops: 10,000 idle-reporting printers just given jobs made a pass with
nothing to do take 2-5 s. One printer's (`_READY_PRINTER_CANDIDATE`, a printer turning ready) keeps the
`NOT EXISTS`: one probe of the active-printer index rather than hashing every active job."""
_READY_PRINTER_CANDIDATE = _ready_printer_candidates(one=True)


def _matching_try_lock() -> sa.Subquery:
    """The pass's lock tried, with the farm's colour tolerance, as a subquery its OFFSET keeps PostgreSQL from
    folding into the statement around it (so it runs once, first)."""
    return (
        sa.select(
            sa.func.pg_try_advisory_xact_lock(MATCHING_LOCK_KEY).label("matching_locked"),
            READ_COLOR_TOLERANCE.scalar_subquery().label("color_tolerance"),
        )
        .offset(0)
        .subquery("matching_lock")
    )


def _try_lock_matching_for() -> sa.Select[Any]:
    """The try-lock first (its subquery's OFFSET keeps PostgreSQL from folding it into the outer query, so it runs
    once), then the printer's candidate row only if the lock was taken: the outer join yields one row either way."""
    lock = _matching_try_lock()
    candidate = _READY_PRINTER_CANDIDATE.where(lock.c.matching_locked).lateral("candidate")
    return sa.select(lock.c.matching_locked, lock.c.color_tolerance, candidate).select_from(
        lock.outerjoin(candidate, sa.true())
    )


_TRY_LOCK_MATCHING_FOR = _try_lock_matching_for()


def _save_printer_and_try_lock_matching() -> sa.Select[Any]:
    """The upsert in a CTE (run to completion whatever the rest reads), the try-lock as in `_try_lock_matching_for`,
    and the occupancy half of `_ready_printer_candidates(one=True)` for the printer being saved."""
    t, j = orm.printers, orm.jobs
    saved = UPSERT.returning(t.c.id).cte("saved_printer")
    lock = _matching_try_lock()
    printer_id = sa.bindparam("id", type_=t.c.id.type)
    current = sa.bindparam("current_job_id", type_=t.c.current_job_id.type)

    def states(names: frozenset[str]) -> list[Any]:
        return [sa.literal_column(f"'{name}'") for name in sorted(names)]

    active = sa.exists(sa.select(j.c.id).where(j.c.printer_id == printer_id, j.c.status.in_(states(ACTIVE))))
    reported_status = sa.select(j.c.status).where(j.c.id == current).scalar_subquery()
    free = sa.and_(~active, sa.or_(current.is_(None), reported_status.in_(states(TERMINAL))))
    return sa.select(
        lock.c.matching_locked,
        lock.c.color_tolerance,
        free.label("free"),
        sa.select(sa.func.count()).select_from(saved).scalar_subquery().label("saved"),
    ).select_from(lock)


_SAVE_PRINTER_AND_TRY_LOCK_MATCHING = _save_printer_and_try_lock_matching()


def _claim_queued(locking_clause: str) -> DriverStatement:
    return DriverStatement(sa.text(
        f"""
        SELECT {job_record_columns("j")},
            (SELECT trace_parent FROM orders WHERE orders.order_id = j.order_id) AS trace_parent
        FROM (SELECT id FROM unnest(CAST(:job_ids AS text[])) AS given(id) ORDER BY id) AS wanted
        CROSS JOIN LATERAL (
            SELECT * FROM jobs WHERE jobs.id = wanted.id AND jobs.status = 'queued' LIMIT 1 {locking_clause}
        ) AS j
        """
    ))


_CLAIM_QUEUED = _claim_queued("FOR UPDATE")
_CLAIM_QUEUED_SKIP_LOCKED = _claim_queued("FOR UPDATE SKIP LOCKED")
"""One primary-key probe per id, locking in id order as PostgreSQL sorts ids (as every writer of jobs locks). As
`id = ANY(:ids) AND status = 'queued'` PostgreSQL could instead scan a partial index of every queued job (`status
= 'queued'` matches their predicate): it did whenever its statistics were stale, as right after a big order's
jobs went in, and then the claim of a pass grew with the queue (200,000 queued jobs: most of a second to claim
10,000). The LATERAL with its LIMIT leaves it only the probe per id. Run on the driver, its rows as asyncpg gives
them: the pass reads 10,000 by position (`mappers.jobs_from_records`)."""
_EXPIRED_DISPATCHES = (
    sa.select(orm.jobs.c.id)
    .where(
        orm.jobs.c.status == "assigned",
        orm.jobs.c.dispatch_deadline < sa.bindparam("now", type_=orm.jobs.c.dispatch_deadline.type),
    )
    .order_by(orm.jobs.c.id)
)


def _models(basis: str, sliced: SlicedTargets) -> frozenset[SlicedFor] | None:
    return sliced.get(basis, frozenset()) if basis else None


_FILE_KIND = "coalesce(CASE WHEN slice_basis IS NULL THEN file ->> 'kind' END, '')"
"""The kind of the pre-sliced file a job prints as it is ('' for one that prints a slice): it decides the
job's `matching.file_family`. Spelt as in the queue-order indexes (migration 0011)."""

_GROUP_KEY = f"""lower(btrim(material_type)), coalesce(material_color, '')::text, coalesce(material_profile, '')::text,
    assignment, coalesce(slice_basis, '')::text, {_FILE_KIND}"""
_AFTER_TYPE_COLUMNS = f"""coalesce(material_color, '')::text, coalesce(material_profile, '')::text, assignment,
    coalesce(slice_basis, '')::text, {_FILE_KIND}"""
_AFTER_TYPE = f"({_AFTER_TYPE_COLUMNS})"
_SHARED = "(assignment ->> 'mode') IS DISTINCT FROM 'printer'"
_PINNED = "(assignment ->> 'mode') = 'printer'"
_HOLDER = "(assignment ->> 'printer_id')"
"""Queued jobs any fitting printer may take (`ix_jobs_queue_shared`) and jobs pinned to one printer
(`ix_jobs_queue_pinned`, that printer's id first): spelt as in migration 0011, so PostgreSQL uses them."""

PINNED_PROBES_UP_TO = 64
"""With at most this many ready printers a pass probes the pinned index for each printer's own jobs; with more
it walks every group of pinned jobs once (a whole fleet ready: probing each of 10,000 printers per material
type would cost more than the groups)."""

_SHARED_GROUPS = f"""
    shared(t, c, p, a, b, f) AS (
        SELECT first.* FROM unnest(CAST(:types AS text[])) AS wanted(t) CROSS JOIN LATERAL (
            SELECT {_GROUP_KEY} FROM jobs
            WHERE status = 'queued' AND {_SHARED} AND lower(btrim(material_type)) = wanted.t
            ORDER BY {_GROUP_KEY} LIMIT 1
        ) AS first
        UNION ALL
        SELECT next.* FROM shared AS g CROSS JOIN LATERAL (
            SELECT {_GROUP_KEY} FROM jobs
            WHERE status = 'queued' AND {_SHARED} AND lower(btrim(material_type)) = g.t
              AND {_AFTER_TYPE} > (g.c, g.p, g.a, g.b, g.f)
            ORDER BY {_GROUP_KEY} LIMIT 1
        ) AS next
    )"""

_QUEUE_GROUPS = sa.text(
    f"""
    WITH RECURSIVE {_SHARED_GROUPS},
    pinned(o, t, c, p, a, b, f) AS (
        (SELECT {_HOLDER}, {_GROUP_KEY} FROM jobs WHERE status = 'queued' AND {_PINNED}
         ORDER BY {_HOLDER}, {_GROUP_KEY} LIMIT 1)
        UNION ALL
        SELECT next.* FROM pinned AS g CROSS JOIN LATERAL (
            SELECT {_HOLDER}, {_GROUP_KEY} FROM jobs
            WHERE status = 'queued' AND {_PINNED}
              AND ({_HOLDER}, lower(btrim(material_type)), {_AFTER_TYPE_COLUMNS}) > (g.o, g.t, g.c, g.p, g.a, g.b, g.f)
            ORDER BY {_HOLDER}, {_GROUP_KEY} LIMIT 1
        ) AS next
    )
    SELECT t, c, p, a::text, b, f FROM shared
    UNION ALL
    SELECT t, c, p, a::text, b, f FROM pinned WHERE t = ANY(CAST(:types AS text[]))
    """
)
"""The distinct requirement groups of the queued jobs of the material `types` ready printers hold: skip scans
(one index probe per group), not an aggregate over every queued job of those types. The groups of pinned jobs
are walked whole, every printer's (a pass over most of a fleet)."""

_GROUPS_PINNED_TO = f"""
    pinned(o, t, c, p, a, b, f) AS (
        SELECT first.* FROM unnest(CAST(:holders AS text[])) AS holder(o)
        CROSS JOIN unnest(CAST(:types AS text[])) AS wanted(t) CROSS JOIN LATERAL (
            SELECT {_HOLDER}, {_GROUP_KEY} FROM jobs
            WHERE status = 'queued' AND {_PINNED} AND {_HOLDER} = holder.o AND lower(btrim(material_type)) = wanted.t
            ORDER BY {_HOLDER}, {_GROUP_KEY} LIMIT 1
        ) AS first
        UNION ALL
        SELECT next.* FROM pinned AS g CROSS JOIN LATERAL (
            SELECT {_HOLDER}, {_GROUP_KEY} FROM jobs
            WHERE status = 'queued' AND {_PINNED} AND {_HOLDER} = g.o AND lower(btrim(material_type)) = g.t
              AND {_AFTER_TYPE} > (g.c, g.p, g.a, g.b, g.f)
            ORDER BY {_HOLDER}, {_GROUP_KEY} LIMIT 1
        ) AS next
    )"""
"""The groups of the jobs pinned to `:holders` of the material `:types`, by the pinned index."""

_QUEUE_GROUPS_PINNED_TO = sa.text(
    f"""
    WITH RECURSIVE {_SHARED_GROUPS}, {_GROUPS_PINNED_TO}
    SELECT t, c, p, a::text, b, f FROM shared
    UNION ALL
    SELECT t, c, p, a::text, b, f FROM pinned
    """
)
"""`_QUEUE_GROUPS` for a few ready printers (`:holders`; one turning ready): of the pinned jobs only those
pinned to them. A farm pins some jobs to each of its printers: walking every printer's pinned groups made a
printer turning ready probe ~20,000 groups at 200,000 queued jobs x 10,000 printers (over half a second)."""

_HEAD_COLUMNS = "id, order_id, line_position, part_index, copy_number, priority, fulfillment_date, order_created_at"
_JOB_ORDER = (
    "(priority <> 'normal'), coalesce(fulfillment_date, DATE 'infinity'), order_created_at,"
    ' order_id COLLATE "C", line_position, part_index, copy_number, id COLLATE "C"'
)
_IN_GROUP = f"""lower(btrim(material_type)) = g.t AND coalesce(material_color, '') = g.c
          AND coalesce(material_profile, '') = g.p AND assignment = CAST(g.a AS jsonb)
          AND coalesce(slice_basis, '') = g.b AND {_FILE_KIND} = g.f"""

def _group_heads(limit: str) -> str:
    """A group `g`'s first `limit` queued jobs in `_JOB_ORDER`, from the index it lives in: the pinned one led by
    its printer `g.o`, else the shared one (a plan cannot pick a partial index by a runtime value, so both
    branches are spelt out and the other one's `g.o` test stops it at once)."""
    return f"""
        (SELECT {_HEAD_COLUMNS} FROM jobs
         WHERE g.o IS NULL AND status = 'queued' AND {_SHARED} AND {_IN_GROUP}
         ORDER BY {_JOB_ORDER} LIMIT {limit})
        UNION ALL
        (SELECT {_HEAD_COLUMNS} FROM jobs
         WHERE g.o IS NOT NULL AND status = 'queued' AND {_PINNED} AND {_HOLDER} = g.o AND {_IN_GROUP}
         ORDER BY {_JOB_ORDER} LIMIT {limit})
    """


_MERGED_IN_JOB_ORDER = (
    "ORDER BY (j.priority <> 'normal'), coalesce(j.fulfillment_date, DATE 'infinity'), j.order_created_at,"
    ' j.order_id COLLATE "C", j.line_position, j.part_index, j.copy_number, j.id COLLATE "C"'
)
"""The groups' heads merged in `_JOB_ORDER` (over the lateral's columns, `j`)."""


_QUEUE_HEADS = sa.text(
    f"""
    SELECT g.i, j.id
    FROM unnest(CAST(:ts AS text[]), CAST(:cs AS text[]), CAST(:ps AS text[]), CAST(:as AS text[]),
                CAST(:bs AS text[]), CAST(:fs AS text[]), CAST(:os AS text[]), CAST(:ns AS int[]))
         WITH ORDINALITY AS g(t, c, p, a, b, f, o, n, i)
    CROSS JOIN LATERAL ({_group_heads('g.n')}) AS j
    {_MERGED_IN_JOB_ORDER}
    """
)
"""Per requirement group, its first `n` queued jobs in the order `matching.job_order` defines (`COLLATE "C"`:
ids compare by code point, as in Python; no date is 'infinity', how the driver stores the `date.max` that
`job_order` puts there), then all the groups' merged in that order, as `matching.decide` takes them: one
sort here instead of a key tuple per job and a heap in Python. The order is restated here so an index serves
it (a group pinned to printer `o` reads the pinned index, any other the shared one); a property test against
PostgreSQL (tests/integration/test_queue_repository_sql.py) holds the two together."""


_QUEUE_GROUP_HEADS = DriverStatement(sa.text(
    f"""
    WITH RECURSIVE {_SHARED_GROUPS}, {_GROUPS_PINNED_TO},
    g(o, t, c, p, a, b, f) AS (
        SELECT NULL::text, t, c, p, a, b, f FROM shared
        UNION ALL
        SELECT o, t, c, p, a, b, f FROM pinned
    )
    SELECT g.t, g.c, g.p, g.a::text, g.b, g.f, j.id, s.models, s.fabmatics, s.kinds
    FROM g
    CROSS JOIN LATERAL ({_group_heads('1')}) AS j
    LEFT JOIN LATERAL (
        SELECT array_agg(printer_model) AS models, array_agg(fabmatic) AS fabmatics,
               array_agg(file ->> 'kind') AS kinds
        FROM slices WHERE g.b <> '' AND slice_basis = g.b AND state = 'completed'
    ) AS s ON true
    {_MERGED_IN_JOB_ORDER}
    """
))
"""`_QUEUE_GROUPS_PINNED_TO` for one printer (`:holders`), each group's first queued job (in `matching.job_order`,
by the index `_QUEUE_HEADS` reads) and the targets of its completed slices (`sliced_targets`), in one statement:
all a pass for one printer reads of the queue. Run on the driver (rows read
by position): SQLAlchemy's per-execute work is CPU on the path of a printer turning ready."""


_SAVE_DISPATCHED = sa.text(
    """
    UPDATE jobs SET status = d.status, printer_id = d.printer_id, command_id = d.command_id,
        dispatch_attempts = d.dispatch_attempts, dispatch_deadline = d.dispatch_deadline,
        last_sequence = d.last_sequence, progress_percent = d.progress_percent, revision = d.revision,
        updated_at = d.updated_at, sliced_file = CAST(d.sliced_file AS jsonb)
    FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:printers AS text[]),
                CAST(:commands AS text[]), CAST(:attempts AS int[]), CAST(:deadlines AS timestamptz[]),
                CAST(:sequences AS bigint[]), CAST(:progress AS float8[]), CAST(:revisions AS int[]),
                CAST(:updated AS timestamptz[]), CAST(:files AS text[]))
        AS d(id, status, printer_id, command_id, dispatch_attempts, dispatch_deadline, last_sequence,
             progress_percent, revision, updated_at, sliced_file)
    WHERE jobs.id = d.id AND jobs.id = ANY(CAST(:ids AS text[]))
    """
)
"""The columns `lifecycle.dispatch` (and the pass's choice of slice) set, for many jobs in one statement. The
`ANY` lets PostgreSQL keep only those rows as it reads the table (by primary key, or by a scan filtering on a
hash of the ids): from the join alone it hashed every job of the table (200,000 to update 10,000, spilling to
disk)."""
