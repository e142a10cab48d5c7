"""Which queued job goes to which ready printer, and why a printer did or did not take a job.

The pass is greedy in job order (normal before low priority, earlier fulfillment date, older
order, line item position, part, copy); each job takes the fitting printer idle longest. Jobs with
the same requirements form a group; printers with the same offer (a slot's material, the printer's
tags, model and kind of file) share a shelf, and each group is tested once per shelf of its material
type, never per printer. A pass costs about jobs (grouping, ordering the fitting groups) + printers ×
slots (the shelves) + groups × shelves of a type + dispatches × log(shelves), instead of jobs × printers.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from printqueue.domain.colour_distance import color_distance, colors_match
from printqueue.domain.model import Assignment, Job, Material, Printer, Target, rgb
from printqueue.domain.slicing import Slice, printer_target

MatchResult = Literal[
    "matched", "offline", "busy", "bed_not_clear", "material_mismatch", "tag_mismatch", "not_target_printer",
    "file_mismatch", "slicing",
]
Readiness = Literal["ready", "offline", "busy", "bed_not_clear"]
FileFamily = Literal["bambu", "gcode"]
"""What a file prints on: a Bambu project (`.gcode.3mf`) only on a `bambu_lan` printer, plain G-code only
on the others (Klipper, PrusaLink, OctoPrint). Holds for pre-sliced files and for slices alike."""
SlicedFor = tuple[str, bool, FileFamily]
"""A completed slice as matching sees it: the printer model and FabMatic flag it was made for, and the
family of the file the slicer made (a model spelling shared by a Bambu and a G-code printer still never
sends a `.gcode.3mf` to the G-code one)."""
SlicedTargets = Mapping[str, frozenset[SlicedFor]]
"""Slice basis → what completed slices exist for it."""

FILE_FAMILIES: Mapping[str, FileFamily] = {"gcode.3mf": "bambu", "gcode": "gcode"}
BAMBU_PROTOCOL = "bambu_lan"
_FAMILY_NAMES: Mapping[FileFamily, str] = {"bambu": "a Bambu project file (.gcode.3mf)", "gcode": "a plain G-code file"}
_PROTOCOL_NAMES = {"bambu_lan": "Bambu", "moonraker": "Klipper", "prusalink": "PrusaLink", "octoprint": "OctoPrint"}

READY_STATES = frozenset({"idle", "finished"})


@dataclass(frozen=True)
class Dispatch:
    job_id: str
    printer_id: str


@dataclass(frozen=True)
class Requirement:
    """Everything about a job that decides which printers fit it."""

    material_type: str
    color: str | None
    profile: str | None
    mode: str
    printer_id: str | None
    tags: frozenset[str]
    models: frozenset[SlicedFor] | None = None
    """For a job that prints a slice: the (model, FabMatic, file family) it has one for; None: any printer."""
    family: FileFamily | None = None
    """For a job that prints its part's pre-sliced file: the printers that file is for; None: any."""
    color_tolerance: float = 0.0
    """The farm's colour tolerance (CIEDE2000 ΔE): 0 matches the exact colour only."""

    @classmethod
    def of(
        cls,
        material: Material,
        assignment: Assignment,
        models: frozenset[SlicedFor] | None = None,
        family: FileFamily | None = None,
        color_tolerance: float = 0.0,
    ) -> Requirement:
        return cls(
            material_type=material.type.strip().casefold(),
            color=rgb(material.color),
            profile=material.profile or None,
            mode=assignment.mode,
            printer_id=assignment.printer_id if assignment.mode == "printer" else None,
            tags=frozenset(t.casefold() for t in assignment.tags) if assignment.mode == "tags" else frozenset(),
            models=models,
            family=family,
            color_tolerance=max(color_tolerance, 0.0),
        )

    @classmethod
    def of_job(
        cls, job: Job, models: frozenset[SlicedFor] | None = None, color_tolerance: float = 0.0
    ) -> Requirement:
        return cls.of(job.material, job.assignment, models, job_family(job), color_tolerance)

    def color_fits(self, loaded: str | None) -> bool:
        """Whether a spool of colour `loaded` (as `rgb` gives it) serves this requirement's colour."""
        return colors_match(self.color, loaded, self.color_tolerance)


def file_family(kind: object) -> FileFamily | None:
    """The family of a file `kind` that prints as it is; None for sources the slicer turns into files."""
    return FILE_FAMILIES.get(kind) if isinstance(kind, str) else None


def sliced_for(target: Target, file: Mapping[str, Any] | None) -> SlicedFor | None:
    """A completed slice's `SlicedFor`; None when its file is of no kind a printer prints."""
    family = file_family(file.get("kind")) if file else None
    return (target[0], target[1], family) if family is not None else None


def completed_slices(slices: Iterable[Slice]) -> dict[str, frozenset[SlicedFor]]:
    """Per slice basis, what its completed slices print on (`match`'s `sliced`)."""
    found: dict[str, set[SlicedFor]] = {}
    for slice_ in slices:
        usable = sliced_for(slice_.target, slice_.file) if slice_.state == "completed" else None
        if usable is not None:
            found.setdefault(slice_.basis, set()).add(usable)
    return {basis: frozenset(made) for basis, made in found.items()}


def job_family(job: Job) -> FileFamily | None:
    """A job that prints a slice is bound by the models it has slices for instead (`Requirement.models`)."""
    return file_family(job.file.get("kind")) if job.slice_basis is None else None


def printer_family(printer: Printer) -> FileFamily:
    """An older gateway sends no protocol: its printers are Bambu ones (the replica's default)."""
    return "bambu" if printer.protocol == BAMBU_PROTOCOL else "gcode"


QueueKey = tuple[bool, date, datetime, str, int, int, int, str]


def job_order(job: Job) -> QueueKey:
    """The queue order: normal before low, fulfillment date (none last), older order, line item, part, copy.
    `adapters.matching_queries` restates it in SQL (a property test holds the two together): change both."""
    return (
        job.priority != "normal",
        job.fulfillment_date or date.max,
        job.order_created_at,
        job.order_id,
        job.line_position,
        job.part_index,
        job.copy_number,
        job.id,
    )


def readiness(printer: Printer, occupied: bool, now: datetime) -> Readiness:
    """`occupied`: the queue has an active job on it, or it reports a current job that is not finished."""
    if printer.deleted or not printer.online or printer.state == "offline":
        return "offline"
    if printer.state not in READY_STATES or occupied:
        return "busy"
    if printer.avoid_until is not None and printer.avoid_until > now:
        return "busy"
    if not printer.bed_clear:
        return "bed_not_clear"
    return "ready"


def holds_material(printer: Printer, requirement: Requirement) -> bool:
    """Type case-insensitive; colour by RGB (within the farm's ΔE tolerance) when the job names one; profile
    only when both sides have one. Every slot counts, the external spool (254/255) included."""
    for slot in printer.materials:
        if slot.type.strip().casefold() != requirement.material_type:
            continue
        if requirement.color is not None and not requirement.color_fits(rgb(slot.color)):
            continue
        if requirement.profile and slot.profile and slot.profile != requirement.profile:
            continue
        return True
    return False


def fitting_slots(printer: Printer, requirement: Requirement) -> list[int]:
    """The slots of `printer` whose spool serves `requirement` by `holds_material`'s rules."""
    return [
        slot.slot
        for slot in printer.materials
        if slot.type.strip().casefold() == requirement.material_type
        and (requirement.color is None or requirement.color_fits(_slot_rgb(slot.color)))
        and not (requirement.profile and slot.profile and slot.profile != requirement.profile)
    ]


def assignment_result(printer: Printer, requirement: Requirement) -> MatchResult | None:
    if requirement.mode == "printer" and printer.id != requirement.printer_id:
        return "not_target_printer"
    if requirement.mode == "tags" and not requirement.tags <= {t.casefold() for t in printer.tags}:
        return "tag_mismatch"
    return None


def fits(printer: Printer, requirement: Requirement) -> bool:
    return (
        assignment_result(printer, requirement) is None
        and holds_material(printer, requirement)
        and (requirement.family is None or requirement.family == printer_family(printer))
    )


def idle_order(printer: Printer) -> tuple[float, str]:
    """Longest idle first; a printer with no idle time known goes last."""
    since = printer.idle_since
    return (since.timestamp() if since is not None else float("inf"), printer.id)


@dataclass(frozen=True)
class _Stock:
    """A ready printer's loaded materials and tags, normalised once per pass so each fit test is a set lookup."""

    printer: Printer
    types: frozenset[str]
    colors: frozenset[tuple[str, str | None]]
    slots: tuple[tuple[str, str | None, str | None], ...]
    tags: frozenset[str]
    target: Target | None
    family: FileFamily

    @property
    def takes(self) -> SlicedFor | None:
        """The slice this printer prints: made for its model and FabMatic flag, of its family of file."""
        return (self.target[0], self.target[1], self.family) if self.target is not None else None

    @classmethod
    def of(cls, printer: Printer) -> _Stock:
        slots = tuple(
            (slot.type.strip().casefold(), _slot_rgb(slot.color), slot.profile or None)
            for slot in printer.materials
            if slot.type.strip()
        )
        return cls(
            printer=printer,
            types=frozenset(t for t, _, _ in slots),
            colors=frozenset((t, c) for t, c, _ in slots),
            slots=slots,
            tags=frozenset(t.casefold() for t in printer.tags),
            target=printer_target(printer),
            family=printer_family(printer),
        )

    def fits(self, requirement: Requirement) -> bool:
        if requirement.mode == "printer" and self.printer.id != requirement.printer_id:
            return False
        if requirement.tags and not requirement.tags <= self.tags:
            return False
        if requirement.models is not None and self.takes not in requirement.models:
            return False
        if requirement.family is not None and requirement.family != self.family:
            return False
        if requirement.profile is None:
            if requirement.color is None:
                return requirement.material_type in self.types
            if (requirement.material_type, requirement.color) in self.colors:
                return True
            if requirement.color_tolerance <= 0:
                return False
        return any(
            t == requirement.material_type
            and (requirement.color is None or requirement.color_fits(c))
            and (requirement.profile is None or p is None or p == requirement.profile)
            for t, c, p in self.slots
        )


@functools.lru_cache(maxsize=4096)
def _slot_rgb(color: str | None) -> str | None:
    """`rgb` of a spool's colour, cached: a fleet loads few distinct colours, each spelt the same way."""
    return rgb(color)


ShelfKey = tuple[str, str | None, str | None, frozenset[str], SlicedFor | None, FileFamily]
"""What a printer offers through one of its slots: (type, colour, profile) of the spool, and the printer's
tags, the slice it takes and its family of file. Printers on one shelf are interchangeable for any job."""


def _shelf_fits(key: ShelfKey, requirement: Requirement) -> bool:
    """`_Stock.fits` for a printer that offers `key` (pinned printers aside): the same rules, per slot."""
    material_type, color, profile, tags, takes, family = key
    return (
        material_type == requirement.material_type
        and requirement.tags <= tags
        and (requirement.models is None or takes in requirement.models)
        and (requirement.family is None or requirement.family == family)
        and (requirement.color is None or requirement.color_fits(color))
        and (requirement.profile is None or profile is None or profile == requirement.profile)
    )


class Fleet:
    """The ready printers indexed by what they can serve: per material type, its shelves (the printers that
    offer one `ShelfKey`, by rank: idle order). A requirement is tested once per shelf of its type instead of
    once per printer. Built once per pass and only read: `decide` keeps what it takes on the side."""

    def __init__(self, ready_printers: Sequence[Printer]) -> None:
        self.printers = sorted(ready_printers, key=idle_order)
        self.rank = {printer.id: index for index, printer in enumerate(self.printers)}
        found: dict[ShelfKey, int] = {}
        self.shelves: list[list[int]] = []
        self.by_type: dict[str, list[tuple[ShelfKey, int]]] = {}
        self.offers: list[frozenset[ShelfKey]] = []
        for index, printer in enumerate(self.printers):
            offered = _offers(
                tuple((slot.type, slot.color, slot.profile) for slot in printer.materials),
                printer.tags, printer_target(printer), printer.protocol,
            )
            self.offers.append(offered)
            for key in offered:
                shelf = found.get(key)
                if shelf is None:
                    shelf = found[key] = len(self.shelves)
                    self.shelves.append([])
                    self.by_type.setdefault(key[0], []).append((key, shelf))
                self.shelves[shelf].append(index)

    def shelves_for(self, requirement: Requirement) -> list[int]:
        """The shelves (indices) whose printers fit `requirement`; none for one pinned to a printer."""
        if requirement.mode == "printer":
            return []
        offered = self.by_type.get(requirement.material_type, ())
        return [shelf for key, shelf in offered if _shelf_fits(key, requirement)]

    def pinned_rank(self, requirement: Requirement) -> int:
        """The rank of the printer a requirement is pinned to when it is ready and fits; -1 otherwise."""
        rank = self.rank.get(requirement.printer_id or "", -1)
        return rank if rank >= 0 and any(_shelf_fits(key, requirement) for key in self.offers[rank]) else -1

    def mask(self, shelf: int) -> int:
        """A shelf's printers as bits of an int (bit r: the printer of rank r), for unions counted at once."""
        ranks = self.shelves[shelf]
        bits = bytearray((ranks[-1] >> 3) + 1 if ranks else 0)
        for rank in ranks:
            bits[rank >> 3] |= 1 << (rank & 7)
        return int.from_bytes(bits, "little")


@functools.lru_cache(maxsize=65536)
def _offers(
    slots: tuple[tuple[str, str | None, str | None], ...], tags: tuple[str, ...], target: Target | None,
    protocol: str,
) -> frozenset[ShelfKey]:
    """The shelf keys of a printer with these spools and traits, cached: a fleet has few distinct ones, so a
    fleet of 10,000 printers is put on its shelves without normalising each printer's slots and tags again."""
    family: FileFamily = "bambu" if protocol == BAMBU_PROTOCOL else "gcode"
    takes = (target[0], target[1], family) if target is not None else None
    folded = frozenset(t.casefold() for t in tags)
    return frozenset(
        (kind.strip().casefold(), _slot_rgb(color), profile or None, folded, takes, family)
        for kind, color, profile in slots
        if kind.strip()
    )


Candidates = tuple[Sequence[Requirement], Iterable[tuple[int, str]]]
"""What `decide` takes: the requirement groups, and their candidate jobs (only each group's head, as many as one
pass could dispatch) all in one queue order (`job_order`), each as (index of its group, job id)."""


def match(
    queued_jobs: Iterable[Job],
    ready_printers: Sequence[Printer],
    sliced: SlicedTargets | None = None,
    color_tolerance: float = 0.0,
) -> list[Dispatch]:
    """Assign each queued job, in queue order, to the fitting ready printer idle longest; one job per printer.
    A job that prints a slice goes only to a printer of a model it has a completed slice for (`sliced`)
    whose file is of the printer's family; one that prints its part's pre-sliced file only to a printer of
    that file's family (`job_family`). A job that names a colour takes a spool within `color_tolerance`
    (CIEDE2000 ΔE) of it. Groups the jobs by requirement and orders each group; `decide` takes them merged
    into one queue order as it goes (a group's later jobs are never ordered once the printers run out)."""
    if not ready_printers:
        return []
    sliced = sliced or {}
    groups: dict[
        tuple[str, str | None, str | None, str, str | None, tuple[str, ...], str | None, FileFamily | None],
        list[QueueKey],
    ]
    groups = {}
    families = FILE_FAMILIES
    for job in queued_jobs:
        if job.status != "queued":
            continue
        material, assignment, basis = job.material, job.assignment, job.slice_basis
        kind = job.file.get("kind") if basis is None else None
        group = (material.type, material.color, material.profile, assignment.mode, assignment.printer_id,
                 assignment.tags, basis, families.get(kind) if isinstance(kind, str) else None)
        keys = groups.get(group)
        if keys is None:
            groups[group] = [job_order(job)]
        else:
            keys.append(job_order(job))
    requirements: list[Requirement] = []
    for (kind, color, profile, mode, target_id, tags, basis, family), keys in groups.items():
        models = sliced.get(basis, frozenset()) if basis is not None else None
        requirements.append(Requirement.of(
            Material(kind, color, profile), Assignment(mode, target_id, tags), models, family,  # type: ignore[arg-type]
            color_tolerance,
        ))
        keys.sort()
    merged = heapq.merge(*(zip(keys, itertools.repeat(index)) for index, keys in enumerate(groups.values())))
    return decide((requirements, ((index, key[-1]) for key, index in merged)), Fleet(ready_printers))


def decide(candidates: Candidates, fleet: Fleet) -> list[Dispatch]:
    """`match`'s decision over jobs already grouped and merged in queue order: each job in turn takes the first
    free printer of its group, from a heap of the first free printer of each shelf that fits the group, so
    taking its next printer skips only printers taken since it last looked. A group with no fitting free
    printer left is dead: its later jobs are skipped, and no job is compared with a printer. It costs
    groups × shelves of a type + jobs handed over + dispatches × log(shelves of a group): no job is ordered
    here, and nothing grows with the queue beyond the heads the pass reads."""
    requirements, queue = candidates
    printers, shelves = fleet.printers, fleet.shelves
    if not printers:
        return []
    fronts: list[list[tuple[int, int]]] = []
    for requirement in requirements:
        if requirement.mode == "printer":
            rank = fleet.pinned_rank(requirement)
            first = [(rank, -1)] if rank >= 0 else []
        else:
            first = [(shelves[s][0], s) for s in fleet.shelves_for(requirement)]
            heapq.heapify(first)
        fronts.append(first)
    taken = bytearray(len(printers))
    cursors = [0] * len(shelves)
    out: list[Dispatch] = []
    left = len(printers)
    for index, job_id in queue:
        front = fronts[index]
        if not front:
            continue  # no fitting printer (left): the group is dead
        rank = _first_free(front, shelves, cursors, taken)
        if rank < 0:
            continue
        taken[rank] = 1
        out.append(Dispatch(job_id, printers[rank].id))
        left -= 1
        if not left:
            break
    return out


def _first_free(
    fronts: list[tuple[int, int]], shelves: Sequence[list[int]], cursors: list[int], taken: bytearray
) -> int:
    """The rank of the free printer idle longest among a group's shelves (`fronts`: a heap of (rank, shelf),
    -1 for a pinned printer); -1 when none is left. A front can only have been taken since, never freed, so
    the heap's top, once free, is the least rank of all. A shelf's cursor is shared by every group it
    serves, so each printer is skipped once per shelf."""
    while fronts:
        rank, shelf = fronts[0]
        if not taken[rank]:
            return rank
        following = -1
        if shelf >= 0:
            ranks, cursor = shelves[shelf], cursors[shelf]
            while cursor < len(ranks) and taken[ranks[cursor]]:
                cursor += 1
            cursors[shelf] = cursor
            following = ranks[cursor] if cursor < len(ranks) else -1
        if following < 0:
            heapq.heappop(fronts)
        else:
            heapq.heapreplace(fronts, (following, shelf))
    return -1


def dispatch_limits(groups: Sequence[tuple[Requirement, int]], fleet: Fleet) -> list[int]:
    """For each (requirement, queued count): how many of its jobs one pass could dispatch at most, i.e.
    min(count, ready printers that fit). Lets the caller load only the head of each group. A group's fitting
    printers are the union of its shelves, counted as the bits of their printer masks OR-ed together."""
    masks: dict[int, int] = {}
    limits: list[int] = []
    for requirement, count in groups:
        if requirement.mode == "printer":
            fitting = int(fleet.pinned_rank(requirement) >= 0)
        else:
            union = 0
            for s in fleet.shelves_for(requirement):
                mask = masks.get(s)
                if mask is None:
                    mask = masks[s] = fleet.mask(s)
                union |= mask
            fitting = union.bit_count()
        limits.append(min(fitting, max(count, 0)))
    return limits


@dataclass(frozen=True)
class PrinterVerdict:
    printer_id: str
    printer_name: str
    result: MatchResult
    detail: str | None = None
    color_distance: float | None = None
    """ΔE00 from the job's colour to the closest loaded spool of its type; None if either has no hex colour."""


def closest_color(printer: Printer, requirement: Requirement) -> float | None:
    """The smallest ΔE00 between the requirement's colour and a spool of its type on `printer`."""
    distances = [
        d
        for slot in printer.materials
        if slot.type.strip().casefold() == requirement.material_type
        and (d := color_distance(requirement.color, rgb(slot.color))) is not None
    ]
    return min(distances, default=None)


def explain(
    job: Job,
    printers: Iterable[tuple[Printer, bool]],
    now: datetime,
    slices: Mapping[Target, Slice] | None = None,
    color_tolerance: float = 0.0,
) -> list[PrinterVerdict]:
    """Per printer (with its `occupied` flag), why it would or would not take `job` now. The most
    lasting reason wins: assignment, then the kind of printer a pre-sliced file is for (no spool change
    helps), then material, then the slice (a job that prints one needs it made for the printer's model:
    `slices` by target), then the printer's momentary state. A job that names a colour gets, per printer, the
    distance to its closest spool of the type (what the farm's colour tolerance is compared with)."""
    requirement = Requirement.of_job(job, color_tolerance=color_tolerance)
    verdicts: list[PrinterVerdict] = []
    for printer, occupied in printers:
        detail: str | None = None
        result: MatchResult | None = assignment_result(printer, requirement)
        if result is None and requirement.family is not None and requirement.family != printer_family(printer):
            result, detail = "file_mismatch", _family_detail(requirement.family, printer)
        distance = closest_color(printer, requirement) if requirement.color is not None else None
        if result is None and not holds_material(printer, requirement):
            result = "material_mismatch"
            if distance is not None:
                detail = _color_detail(job.material, distance, requirement.color_tolerance)
        if result is None and job.slice_basis is not None:
            result, detail = _file_result(printer, slices or {})
        if result is None:
            state = readiness(printer, occupied, now)
            result = "matched" if state == "ready" else state
        verdicts.append(PrinterVerdict(printer.id, printer.name, result, detail, distance))
    return verdicts


def _color_detail(material: Material, distance: float, tolerance: float) -> str:
    return f"the closest {material.type} spool is ΔE {distance:g} from {material.color} (tolerance {tolerance:g})"


def _family_detail(family: FileFamily, printer: Printer) -> str:
    kind = _PROTOCOL_NAMES.get(printer.protocol, printer.protocol or "this")
    article = "an" if kind[:1].upper() in "AEIOU" else "a"
    return f"{_FAMILY_NAMES[family]} cannot print on {article} {kind} printer"


def _file_result(printer: Printer, slices: Mapping[Target, Slice]) -> tuple[MatchResult | None, str | None]:
    target = printer_target(printer)
    found = slices.get(target) if target is not None else None
    model = f"{printer.model or 'unknown model'}{' (FabMatic)' if printer.fabmatic else ''}"
    if found is None:
        return "file_mismatch", f"no file sliced for {model}"
    if found.state == "requested":
        return "slicing", f"the file for {model} is being sliced"
    if found.state == "failed":
        return "file_mismatch", f"slicing for {model} failed: {found.error}"
    family = file_family((found.file or {}).get("kind"))
    if family is None:
        return "file_mismatch", f"the file sliced for {model} is of no kind a printer prints"
    if family != printer_family(printer):
        return "file_mismatch", f"the file sliced for {model}: {_family_detail(family, printer)}"
    return None, None
