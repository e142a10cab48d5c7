"""An in-memory queue repository and unit of work with the SQL ones' semantics (for unit and property tests).

It enforces the same two partial unique indexes, so a handler bug that would violate them in
PostgreSQL fails here too.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from printqueue.domain.matching import (
    READY_STATES,
    Candidates,
    Fleet,
    Requirement,
    SlicedFor,
    completed_slices,
    job_order,
)
from printqueue.domain.model import (
    ACTIVE,
    TERMINAL,
    WAITING,
    FarmSettings,
    Job,
    OrderRecord,
    OrderSummary,
    Printer,
    summarize,
)
from printqueue.domain.reconciliation import DesiredOrder, DesiredRun, reconcile_order_jobs
from printqueue.domain.slicing import Slice, needs_slicing
from servicekit.inbox import InboxClaim
from servicekit.testing import FakeUnitOfWork


class UniqueViolation(Exception):
    pass


class InMemoryQueueRepository:
    def __init__(self) -> None:
        self.orders: dict[str, OrderRecord] = {}
        self.jobs: dict[str, Job] = {}
        self.printers_by_id: dict[str, Printer] = {}
        self.slices: dict[str, Slice] = {}
        self.traces: dict[str, str] = {}
        self.settings = FarmSettings()
        self.matching_lock_busy = False
        """True: another transaction holds the matching pass's lock (`try_lock_matching_for` fails)."""

    async def lock_order_key(self, order_id: str) -> None:
        return None

    async def remember_trace(self, order_id: str, traceparent: str) -> None:
        if order_id in self.orders:
            self.traces[order_id] = traceparent

    async def get_order(self, order_id: str, *, for_update: bool = False) -> OrderRecord | None:
        found = self.orders.get(order_id)
        return copy.copy(found) if found else None

    async def save_order(self, order: OrderRecord) -> None:
        self.orders[order.order_id] = copy.copy(order)

    async def jobs_of_order(self, order_id: str, *, for_update: bool = False) -> list[Job]:
        return sorted((copy.deepcopy(j) for j in self.jobs.values() if j.order_id == order_id), key=lambda j: j.id)

    async def jobs_already_match(self, desired: DesiredOrder, runs: Sequence[DesiredRun]) -> bool:
        """Decided by the reconciliation itself, on copies: nothing it would add, change or mark."""
        trial = reconcile_order_jobs(
            OrderRecord(order_id=desired.order_id), await self.jobs_of_order(desired.order_id), desired,
            datetime.now(UTC), lambda: "",
        )
        return trial is not None and not (trial.added or trial.changed or trial.dirty or trial.cancelled)

    async def get_job(self, job_id: str, *, for_update: bool = False) -> Job | None:
        found = self.jobs.get(job_id)
        return copy.deepcopy(found) if found else None

    async def add_jobs(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            if job.id in self.jobs:
                raise UniqueViolation(f"job {job.id} exists")
            self.jobs[job.id] = copy.deepcopy(job)
        self.check_unique()

    async def save_jobs(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.jobs[job.id] = copy.deepcopy(job)
        self.check_unique()

    def check_unique(self) -> None:
        live: set[tuple[str, str, str, int]] = set()
        active: set[str] = set()
        for job in self.jobs.values():
            if job.live:
                key = (job.order_id, *job.identity)
                if key in live:
                    raise UniqueViolation(f"two live jobs for {key}")
                live.add(key)
            if job.status in ACTIVE and job.printer_id is not None:
                if job.printer_id in active:
                    raise UniqueViolation(f"two active jobs on printer {job.printer_id}")
                active.add(job.printer_id)

    async def identity_taken(self, job: Job) -> bool:
        return any(
            other.id != job.id and other.live and other.order_id == job.order_id and other.identity == job.identity
            for other in self.jobs.values()
        )

    async def order_counts(self, order_id: str) -> OrderSummary:
        return summarize([j for j in self.jobs.values() if j.order_id == order_id])

    async def get_printer(
        self, printer_id: str, *, for_update: bool = False, inbox: InboxClaim | None = None
    ) -> Printer | None:
        found = self.printers_by_id.get(printer_id)
        return copy.deepcopy(found) if found else None

    async def save_printer(self, printer: Printer) -> None:
        self.printers_by_id[printer.id] = copy.deepcopy(printer)

    async def printers(self) -> list[Printer]:
        return sorted(
            (copy.deepcopy(p) for p in self.printers_by_id.values() if not p.deleted), key=lambda p: (p.name, p.id)
        )

    async def ready_printer_candidates(self, now: datetime, printer_id: str | None = None) -> list[Printer]:
        occupied = await self.occupied_printers()
        return [
            p
            for p in await self.printers()
            if p.id not in occupied
            and printer_id in (None, p.id)
            and p.online
            and p.bed_clear
            and p.state in READY_STATES
            and (p.avoid_until is None or p.avoid_until <= now)
        ]

    async def occupied_printers(self) -> set[str]:
        occupied = {j.printer_id for j in self.jobs.values() if j.status in ACTIVE and j.printer_id is not None}
        for printer in self.printers_by_id.values():
            current = self.jobs.get(printer.current_job_id) if printer.current_job_id else None
            if printer.current_job_id is not None and (current is None or current.status not in TERMINAL):
                occupied.add(printer.id)
        return occupied

    async def lock_matching(self) -> FarmSettings:
        return self.settings

    async def save_printer_and_try_lock_matching(self, printer: Printer) -> tuple[FarmSettings, bool] | None:
        await self.save_printer(printer)
        if self.matching_lock_busy:
            return None
        return self.settings, printer.id not in await self.occupied_printers()

    async def try_lock_matching_for(self, printer_id: str, now: datetime) -> tuple[FarmSettings, list[Printer]] | None:
        if self.matching_lock_busy:
            return None
        return self.settings, await self.ready_printer_candidates(now, printer_id)

    async def farm_settings(self) -> FarmSettings:
        return self.settings

    async def save_farm_settings(self, settings: FarmSettings, now: datetime) -> None:
        self.settings = settings

    async def queued_groups(
        self, fleet: Fleet, color_tolerance: float = 0.0, spread: float | None = None
    ) -> tuple[Candidates, list[list[str]]]:
        """Every queued job of a type the fleet holds, grouped by requirement, merged in queue order."""
        types = fleet.by_type
        queued = [j for j in self.jobs.values() if j.status == "queued" and j.material.type.strip().casefold() in types]
        sliced = await self.sliced_targets(sorted({j.slice_basis for j in queued if j.slice_basis is not None}))
        groups: dict[Requirement, int] = {}
        order: list[tuple[int, str]] = []
        for j in sorted(queued, key=job_order):
            models = sliced.get(j.slice_basis, frozenset()) if j.slice_basis is not None else None
            order.append((groups.setdefault(Requirement.of_job(j, models, color_tolerance), len(groups)), j.id))
        return (list(groups), order), []

    async def claim_queued(
        self, job_ids: Sequence[str], *, skip_locked: bool = False
    ) -> tuple[list[Job], dict[str, str]]:
        wanted = set(job_ids)
        jobs = sorted(
            (copy.deepcopy(j) for j in self.jobs.values() if j.id in wanted and j.status == "queued"),
            key=lambda j: j.id,
        )
        return jobs, {j.order_id: self.traces[j.order_id] for j in jobs if j.order_id in self.traces}

    async def save_dispatched(self, jobs: Sequence[Job]) -> None:
        await self.save_jobs(jobs)

    async def expired_dispatches(self, now: datetime) -> list[str]:
        return sorted(
            j.id
            for j in self.jobs.values()
            if j.status == "assigned" and j.dispatch_deadline is not None and j.dispatch_deadline < now
        )

    async def lock_slice_bases(self, bases: Sequence[str]) -> None:
        return None

    async def lock_fleet_models(self, *, exclusive: bool) -> None:
        return None

    async def waiting_bases_of_order(self, order_id: str) -> set[str]:
        return {
            j.slice_basis
            for j in self.jobs.values()
            if j.order_id == order_id and j.status in WAITING and j.slice_basis is not None
        }

    async def slices_of(self, bases: Sequence[str]) -> list[Slice]:
        wanted = set(bases)
        return [copy.deepcopy(s) for key, s in sorted(self.slices.items()) if s.basis in wanted]

    async def sliced_targets(self, bases: Sequence[str]) -> dict[str, frozenset[SlicedFor]]:
        return completed_slices(await self.slices_of(bases))

    async def get_slice(self, key: str, *, for_update: bool = False) -> Slice | None:
        found = self.slices.get(key)
        return copy.deepcopy(found) if found else None

    async def add_slice(self, slice_: Slice) -> None:
        if slice_.key in self.slices:
            raise UniqueViolation(f"slice {slice_.key} exists")
        if any(s.basis == slice_.basis and s.target == slice_.target for s in self.slices.values()):
            raise UniqueViolation(f"a slice for {slice_.target} of {slice_.basis} exists")
        self.slices[slice_.key] = copy.deepcopy(slice_)

    async def save_slice(self, slice_: Slice) -> None:
        self.slices[slice_.key] = copy.deepcopy(slice_)

    async def slicing_jobs_of_bases(self, bases: Sequence[str], *, for_update: bool = False) -> list[Job]:
        wanted = set(bases)
        return sorted(
            (copy.deepcopy(j) for j in self.jobs.values() if j.status == "slicing" and j.slice_basis in wanted),
            key=lambda j: j.id,
        )

    async def unanswered_slices(self, asked_before: datetime, limit: int) -> list[Slice]:
        waited_for = {j.slice_basis for j in self.jobs.values() if j.status == "slicing"}
        found = [s for s in self.slices.values()
                 if s.state == "requested" and s.requested_at <= asked_before and s.basis in waited_for]
        return [copy.deepcopy(s) for s in sorted(found, key=lambda s: (s.requested_at, s.key))[:limit]]

    async def waiting_slice_groups(self) -> list[Job]:
        groups: dict[tuple[str, object], Job] = {}
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.status in WAITING and job.slice_basis is not None:
                groups.setdefault((job.slice_basis, job.assignment), copy.deepcopy(job))
        return list(groups.values())

    async def unsliced_waiting_jobs(
        self, job_ids: Sequence[str] | None = None, *, for_update: bool = False
    ) -> list[Job]:
        wanted = set(job_ids) if job_ids is not None else None
        return sorted(
            (
                copy.deepcopy(j)
                for j in self.jobs.values()
                if j.status in WAITING and j.slice_basis is None and needs_slicing(j.file)
                and (wanted is None or j.id in wanted)
            ),
            key=lambda j: j.id,
        )


class InMemoryUnitOfWork(FakeUnitOfWork[InMemoryQueueRepository]):
    """servicekit's fake unit of work over an in-memory store: changes and messages are kept only on commit."""

    def __init__(self, store: InMemoryQueueRepository) -> None:
        super().__init__(store, source="/services/queue")
        self.rematch = self.reforecast = False
        self.wakes = 0
        """How often a commit woke the matcher (as the SQL unit of work does when `rematch` was set)."""
        self.forecast_wakes = 0
        """How often a commit woke the forecast alone (`reforecast` set, `rematch` not)."""

    @property
    def store(self) -> InMemoryQueueRepository:
        return self.state

    def _open(self) -> None:
        self.queue = self.work
        self.rematch = self.reforecast = False

    async def commit(self) -> None:
        if self.joined:
            return
        woke, reforecast = self.rematch, self.reforecast
        await super().commit()
        self.rematch = self.reforecast = False
        if woke:
            self.wakes += 1
        elif reforecast:
            self.forecast_wakes += 1


R = TypeVar("R")

