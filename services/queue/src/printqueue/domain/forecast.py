"""Production forecast: when each waiting job will start and end, and when each order will be complete.

A simulation of the fleet from now on, not a promise. It replays what the matcher does, with the
matcher's own queue order (`matching.job_order`) and fit rules (`matching.Requirement`, `_Stock.fits`):
jobs are taken in queue order and each goes to the fitting printer that is free first (among printers
free at the same moment, the one idle longest, as the matcher picks). Assumptions, stated once:

- A print lasts its sliced estimate, else the part's own estimate, else `default_print_minutes`; those
  are printer minutes, and `time_scale` printer seconds pass per real second (1 on a real farm, the
  simulator's scale on a simulated one).
- A job printing now ends after the rest of its estimate by its progress (by its start time while the
  printer reports no progress); a paused one resumes now.
- A FabMatic printer clears its own bed: it is free again when a print ends. Any other printer waits
  for an operator, who clears a bed `bed_clear_minutes` (real minutes) after the print ends; a bed
  already waiting (a FabMatic one too: it is left unclear only after an error) is cleared that long
  after the printer's last change, at the earliest now.
- Offline printers take nothing until they are back; a job only they could print is blocked.
- A job waiting for its slices will print on a printer of a model a slice is made or being made for.

Bounded: jobs are grouped by requirement, each requirement's fitting printers are found once and kept
in a heap by the time they are free (stale entries are re-keyed when they surface), so a forecast
costs about jobs × log printers plus distinct requirements × printers of their material type.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from printqueue.domain.matching import (
    Requirement,
    SlicedTargets,
    _Stock,
    idle_order,
    job_order,
    readiness,
)
from printqueue.domain.model import ACTIVE, Job, Printer, rgb

OPEN: frozenset[str] = frozenset({"queued", "slicing", "assigned", "printing", "paused"})
"""The jobs a forecast places: not yet finished, not failed or cancelled."""
SCHEDULED: frozenset[str] = frozenset({"queued", "slicing"})


@dataclass(frozen=True)
class ForecastSettings:
    time_scale: float = 1.0
    """Printer seconds per real second."""
    bed_clear_minutes: float = 10.0
    """Real minutes from a print's end until an operator clears a bed that does not clear itself."""
    default_print_minutes: float = 60.0
    """A job whose part and slice give no estimate."""


@dataclass(frozen=True)
class JobSlot:
    job_id: str
    order_id: str
    printer_id: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class OrderForecast:
    order_id: str
    completes_at: datetime | None
    """When the order's last open job ends; None while a job of it is blocked."""
    late: bool
    blocked_by: str | None = None


@dataclass
class Forecast:
    generated_at: datetime
    slots: list[JobSlot] = field(default_factory=list)
    orders: dict[str, OrderForecast] = field(default_factory=dict)

    def by_printer(self) -> dict[str, list[JobSlot]]:
        timeline: dict[str, list[JobSlot]] = {}
        for slot in self.slots:
            timeline.setdefault(slot.printer_id, []).append(slot)
        for slots in timeline.values():
            slots.sort(key=lambda s: (s.starts_at, s.job_id))
        return timeline


def print_minutes(job: Job, settings: ForecastSettings) -> float:
    """The sliced estimate, else the part's, else the default (printer minutes)."""
    sliced = (job.sliced_file or {}).get("print_minutes")
    for value in (sliced, job.print_minutes):
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return settings.default_print_minutes


def print_duration(job: Job, settings: ForecastSettings) -> timedelta:
    """A job's print time in real time."""
    return timedelta(minutes=print_minutes(job, settings) / max(settings.time_scale, 1e-9))


def due_by(fulfillment_date: date | None) -> datetime | None:
    """An order is late when it completes after the end of its fulfilment day (UTC)."""
    if fulfillment_date is None:
        return None
    return datetime.combine(fulfillment_date, time.min, UTC) + timedelta(days=1)


def describe_material(job: Job, color_tolerance: float = 0.0) -> str:
    color = rgb(job.material.color)
    kind = job.material.type.strip()
    text = f"{kind} #{color}" if color else kind
    if color and color_tolerance > 0:
        text += f" (within ΔE {color_tolerance:g})"
    return f"{text} ({job.material.profile})" if job.material.profile else text


def _assignment_words(job: Job, fleet: Mapping[str, _Stock]) -> str:
    assignment = job.assignment
    if assignment.mode == "printer":
        target = fleet.get(assignment.printer_id or "")
        return f" on printer {target.printer.name if target is not None else assignment.printer_id}"
    if assignment.mode == "tags":
        return f" with tags {', '.join(assignment.tags)}"
    return ""


def blocked_reason(job: Job, requirement: Requirement, fleet: Mapping[str, _Stock]) -> str:
    """Why no printer can ever take `job` as the fleet (every printer, by id) stands, the most lasting
    reason first."""
    where = _assignment_words(job, fleet)
    if requirement.mode == "printer":
        target = fleet.get(requirement.printer_id or "")
        if target is None:
            return f"printer {requirement.printer_id} does not exist"
        stocks: Iterable[_Stock] = (target,)
    else:
        stocks = fleet.values()
    material = describe_material(job, requirement.color_tolerance)
    bare = replace(requirement, models=None, family=None)
    holding = [s for s in stocks if s.fits(bare)]
    if not holding:
        return f"no printer{where} holds {material}"
    if requirement.family is not None and not any(s.family == requirement.family for s in holding):
        kind = "Bambu" if requirement.family == "bambu" else "Klipper, PrusaLink or OctoPrint"
        return f"no {kind} printer{where} holds {material} (the part's file prints only there)"
    fitting = [s for s in holding if s.fits(requirement)]
    if not fitting:
        return f"no file is sliced for a printer{where} that holds {material}"
    return f"every printer{where} that holds {material} is offline"


def forecast(
    jobs: Iterable[Job],
    printers: Sequence[Printer],
    now: datetime,
    settings: ForecastSettings | None = None,
    sliced: SlicedTargets | None = None,
    color_tolerance: float = 0.0,
) -> Forecast:
    """Place every open job of `jobs` on the fleet; `sliced`: slice basis → the targets a slice is made or
    being made for (a job waiting for slices prints on one of those); `color_tolerance`: the farm's, as
    matching uses it."""
    settings = settings or ForecastSettings()
    sliced = sliced or {}
    clear = timedelta(minutes=settings.bed_clear_minutes)
    fleet = [p for p in printers if not p.deleted]
    result = Forecast(generated_at=now)

    open_jobs = [j for j in jobs if j.status in OPEN]
    running: dict[str, Job] = {}
    for job in open_jobs:
        if job.status in ACTIVE and job.printer_id is not None:
            running[job.printer_id] = job

    # Each printer that can take work: when it is free, and the tie-break among printers free together.
    free_at: dict[str, datetime] = {}
    stocks = {p.id: _Stock.of(p) for p in fleet}
    rank: dict[str, tuple[float, str]] = {}
    for printer in sorted(fleet, key=idle_order):
        current = running.get(printer.id)
        if current is not None:
            ends = _current_end(current, now, settings)
            result.slots.append(JobSlot(current.id, current.order_id, printer.id, current.started_at or now, ends))
            free = ends if printer.fabmatic else ends + clear
        else:
            state = readiness(printer, False, now)
            if state == "offline":
                continue
            if state == "bed_not_clear":  # a FabMatic printer's bed left unclear means an error: a human clears it
                since = printer.idle_since or printer.updated_at or now
                free = max(now, since + clear)
            elif state == "busy":
                free = now if printer.fabmatic else now + clear
            else:
                free = now
        if printer.avoid_until is not None and printer.avoid_until > free:
            free = printer.avoid_until
        if not printer.online or printer.state == "offline":
            continue  # its current job is placed; the printer takes nothing more until it is back
        free_at[printer.id] = free
        rank[printer.id] = idle_order(printer)

    by_type: dict[str, list[_Stock]] = {}
    for printer_id in free_at:  # in idle order, as `match` keeps its pools
        stock = stocks[printer_id]
        for material_type in stock.types:
            by_type.setdefault(material_type, []).append(stock)

    waiting = sorted((j for j in open_jobs if j.status in SCHEDULED), key=job_order)
    pools: dict[Requirement, list[tuple[datetime, tuple[float, str], str]]] = {}
    blocked: dict[str, list[str]] = {}
    reasons: dict[Requirement, str] = {}
    requirements: dict[tuple[object, ...], Requirement] = {}
    for job in waiting:
        material, assignment = job.material, job.assignment
        key = (material, assignment.mode, assignment.printer_id, assignment.tags, job.slice_basis, job.file.get("kind"))
        requirement = requirements.get(key)  # one Requirement per distinct set of inputs: built once
        if requirement is None:
            models = sliced.get(job.slice_basis, frozenset()) if job.slice_basis is not None else None
            requirement = requirements[key] = Requirement.of_job(job, models, color_tolerance)
        heap = pools.get(requirement)
        if heap is None:
            if requirement.printer_id is not None:
                target = stocks.get(requirement.printer_id)
                candidates = [target] if target is not None and target.printer.id in free_at else []
            else:
                candidates = by_type.get(requirement.material_type, [])
            heap = [(free_at[s.printer.id], rank[s.printer.id], s.printer.id) for s in candidates
                    if s.fits(requirement)]
            heapq.heapify(heap)
            pools[requirement] = heap
        if not heap:
            reason = reasons.get(requirement)
            if reason is None:
                reason = reasons[requirement] = blocked_reason(job, requirement, stocks)
            blocked.setdefault(job.order_id, []).append(reason)
            continue
        while True:
            free, order_key, printer_id = heap[0]
            actual = free_at[printer_id]
            if actual == free:
                break
            heapq.heapreplace(heap, (actual, order_key, printer_id))
        starts = max(free, now)
        ends = starts + print_duration(job, settings)
        result.slots.append(JobSlot(job.id, job.order_id, printer_id, starts, ends))
        next_free = ends if stocks[printer_id].printer.fabmatic else ends + clear
        free_at[printer_id] = next_free
        heapq.heapreplace(heap, (next_free, order_key, printer_id))

    ends_of: dict[str, datetime] = {}
    for slot in result.slots:
        seen = ends_of.get(slot.order_id)
        if seen is None or slot.ends_at > seen:
            ends_of[slot.order_id] = slot.ends_at
    dates = {j.order_id: j.fulfillment_date for j in open_jobs}
    for order_id, fulfillment in dates.items():
        due = due_by(fulfillment)
        if order_id in blocked:
            reason = "; ".join(dict.fromkeys(blocked[order_id]))
            result.orders[order_id] = OrderForecast(order_id, None, due is not None, reason)
            continue
        completes = ends_of.get(order_id, now)
        result.orders[order_id] = OrderForecast(order_id, completes, due is not None and completes > due)
    return result


def _current_end(job: Job, now: datetime, settings: ForecastSettings) -> datetime:
    """The rest of a running job's estimate: by its progress once the printer reports one, else by its start."""
    duration = print_duration(job, settings)
    if job.status == "printing" and job.progress_percent > 0:
        remaining = duration * max(0.0, 1.0 - min(job.progress_percent, 100.0) / 100.0)
        return now + remaining
    if job.status == "printing" and job.started_at is not None:
        return max(now, job.started_at + duration)
    if job.status == "paused":
        return now + duration * max(0.0, 1.0 - min(job.progress_percent, 100.0) / 100.0)
    return now + duration
