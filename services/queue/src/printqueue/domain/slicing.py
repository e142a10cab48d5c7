"""Slicing ahead: which sliced files a job needs, and what the slicer's answers mean for the job.

A part whose file is a mesh (`.stl`, `.3mf`) or an OpenSCAD source cannot go to a printer as it is. The
queue asks the slicer for one file per printer model (and FabMatic flag: its end G-code clears the bed)
among the known printers that fit the job's assignment, before any of them is free, so a free printer
never waits for a slice. A slice is keyed by its inputs (source, parameter values, model, FabMatic,
material): the same inputs are sliced once, however many jobs, orders or clicks ask for them. A job
waits in `slicing` until a slice for one of its models exists, then goes only to printers of the models
it has a slice for; it fails when the slice for every model it could print on failed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from printqueue.domain.model import WAITING, Assignment, Job, Material, Printer, Target

SOURCE_KINDS = frozenset({"scad", "stl", "3mf"})
"""File kinds the slicer turns into a printable file; anything else prints as it is."""
PARAMETRIC_KINDS = frozenset({"scad"})
"""Kinds whose output depends on the parameter values; a mesh ignores them (one slice for every line)."""

SliceState = Literal["requested", "completed", "failed"]
SlicingVerdict = Literal["slicing", "queued", "failed"]


@dataclass
class Slice:
    """One requested sliced file and what the slicer answered."""

    key: str
    basis: str
    printer_model: str
    fabmatic: bool
    source: dict[str, Any]
    """The part's FileRef (JSON) the slice is made from."""
    parameters: dict[str, Any]
    material: Material
    requested_at: datetime
    state: SliceState = "requested"
    file: dict[str, Any] | None = None
    """The sliced FileRef (JSON, bucket `sliced-files`) once completed."""
    profile: str | None = None
    print_minutes: float | None = None
    grams: float | None = None
    error: str | None = None
    stage: str | None = None
    answered_at: datetime | None = None
    requests: int = 1
    """1 + re-requests after an operator retried a job whose slices had failed."""

    @property
    def target(self) -> Target:
        return (self.printer_model, self.fabmatic)

    def view(self) -> dict[str, Any]:
        """What a job keeps of the slice it prints (or estimates with): `Job.sliced_file`."""
        return {
            "slice_key": self.key,
            "printer_model": self.printer_model,
            "fabmatic": self.fabmatic,
            "file": self.file,
            "profile": self.profile,
            "print_minutes": self.print_minutes,
            "grams": self.grams,
        }


def needs_slicing(file: Mapping[str, Any]) -> bool:
    return file.get("kind") in SOURCE_KINDS


def _canonical(value: Any) -> Any:
    """Equal inputs hash equally: integral floats become ints, keys are sorted by the JSON dump."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _digest(value: Any) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_of(file: Mapping[str, Any], parameters: Mapping[str, Any], material: Material) -> dict[str, Any] | None:
    """The inputs every slice of a job shares (None: the part prints as it is). The colour is not an
    input: the same G-code prints any colour of a filament type; the printer's slot is chosen at dispatch."""
    if not needs_slicing(file):
        return None
    kind = str(file.get("kind"))
    return {
        "source": str(file.get("sha256")),
        "kind": kind,
        "parameters": dict(parameters) if kind in PARAMETRIC_KINDS else {},
        "material": {"type": material.type.strip().casefold(), "profile": material.profile or None},
    }


def slice_inputs(job: Job) -> dict[str, Any] | None:
    return inputs_of(job.file, job.parameters, job.material)


def basis_of(file: Mapping[str, Any], parameters: Mapping[str, Any], material: Material) -> str | None:
    inputs = inputs_of(file, parameters, material)
    return _digest(inputs) if inputs is not None else None


def slice_basis(job: Job) -> str | None:
    return basis_of(job.file, job.parameters, job.material)


def slice_key(job: Job, target: Target) -> str:
    """sha256 of the canonical inputs of one slice: the job's inputs plus the printer model and FabMatic."""
    inputs = slice_inputs(job)
    if inputs is None:
        raise ValueError("the job's part prints as it is; it has no slices")
    model, fabmatic = target
    return _digest({**inputs, "printer_model": model, "fabmatic": fabmatic})


def new_slice(job: Job, target: Target, now: datetime) -> Slice:
    basis = slice_basis(job)
    assert basis is not None
    inputs = slice_inputs(job) or {}
    return Slice(
        key=slice_key(job, target),
        basis=basis,
        printer_model=target[0],
        fabmatic=target[1],
        source=dict(job.file),
        parameters=dict(inputs.get("parameters", {})),
        material=Material(type=job.material.type.strip(), profile=job.material.profile or None),
        requested_at=now,
    )


def printer_target(printer: Printer) -> Target | None:
    model = printer.model.strip()
    return (model, printer.fabmatic) if model and not printer.deleted else None


def fits_assignment(printer: Printer, assignment: Assignment) -> bool:
    if assignment.mode == "printer":
        return printer.id == assignment.printer_id
    if assignment.mode == "tags":
        return {t.casefold() for t in assignment.tags} <= {t.casefold() for t in printer.tags}
    return True


def fitting_targets(assignment: Assignment, printers: Iterable[Printer]) -> frozenset[Target]:
    """The (model, FabMatic) pairs among the known printers that fit the assignment: what to slice for.
    The loaded material is not asked: an operator may load it any time, and a farm has few models."""
    targets: set[Target] = set()
    for printer in printers:
        target = printer_target(printer)
        if target is not None and fits_assignment(printer, assignment):
            targets.add(target)
    return frozenset(targets)


def holding_targets(assignment: Assignment, material: Material, printers: Iterable[Printer]) -> frozenset[Target]:
    """The (model, FabMatic) pairs of online printers that fit the assignment and hold the material's type:
    the slices a printer may be waiting for now, asked before the others."""
    wanted = material.type.strip().casefold()
    return frozenset(
        target
        for printer in printers
        if printer.online and fits_assignment(printer, assignment)
        and any(slot.type.strip().casefold() == wanted for slot in printer.materials)
        and (target := printer_target(printer)) is not None
    )


def missing_targets(targets: Iterable[Target], slices: Mapping[Target, Slice]) -> list[Target]:
    return sorted(t for t in targets if t not in slices)


@dataclass(frozen=True)
class SlicingOutcome:
    verdict: SlicingVerdict
    chosen: Slice | None = None
    """A completed slice the job can print (its estimate until the job is dispatched)."""
    error: str | None = None


def judge(targets: Iterable[Target], slices: Mapping[Target, Slice]) -> SlicingOutcome:
    """`queued` once a slice for one of the job's models is completed; `failed` when every model's slice
    failed (the most recent slicer message is the reason, a tool's refusal before "no profile for this
    model": what is wrong with the part matters more than a model nobody slices for); otherwise `slicing`."""
    wanted = sorted(set(targets))
    relevant = [slices[t] for t in wanted if t in slices]
    completed = [s for s in relevant if s.state == "completed"]
    if completed:
        return SlicingOutcome("queued", chosen=completed[0])
    if wanted and len(relevant) == len(wanted) and all(s.state == "failed" for s in relevant):
        latest = max(relevant, key=lambda s: (s.stage != "profile", s.answered_at or s.requested_at, s.key))
        return SlicingOutcome("failed", error=latest.error or "slicing failed")
    return SlicingOutcome("slicing")


def settle(job: Job, outcome: SlicingOutcome, now: datetime) -> bool:
    """Apply `judge`'s outcome to a waiting job; True when its visible state changed. A queued job keeps
    the estimate it has while that slice stays valid; a job already dispatched or done is left alone."""
    if job.status not in WAITING or job.slice_basis is None:
        return False
    before = (job.status, job.error, job.sliced_file)
    if outcome.verdict == "queued":
        assert outcome.chosen is not None
        current = job.sliced_file
        if job.status == "slicing" or current is None or current.get("file") is None:
            job.sliced_file = outcome.chosen.view()
        if job.status == "slicing":
            job.status, job.error = "queued", None
    elif outcome.verdict == "slicing":
        job.status, job.sliced_file = "slicing", None
    else:
        job.status, job.error, job.finished_at = "failed", outcome.error, now
        job.sliced_file = None
    if (job.status, job.error, job.sliced_file) == before:
        return False
    job.touch(now)
    return True


def complete(slice_: Slice, file: dict[str, Any], profile: str, print_minutes: float, grams: float,
             now: datetime) -> bool:
    """A completed slice stays completed (the file exists); a failure may be followed by a success after
    a re-request. True when the slice changed."""
    if slice_.state == "completed":
        return False
    slice_.state, slice_.file, slice_.profile = "completed", file, profile
    slice_.print_minutes, slice_.grams = print_minutes, grams
    slice_.error = slice_.stage = None
    slice_.answered_at = now
    return True


def fail(slice_: Slice, error: str, stage: str, now: datetime) -> bool:
    """Only a slice still waiting for its answer fails: a late failure never undoes a completed file."""
    if slice_.state != "requested":
        return False
    slice_.state, slice_.error, slice_.stage, slice_.answered_at = "failed", error, stage, now
    return True


def request_again(slice_: Slice, now: datetime) -> bool:
    """An operator retries a job whose slices failed: ask the slicer once more."""
    if slice_.state != "failed":
        return False
    slice_.state, slice_.error, slice_.stage, slice_.answered_at = "requested", None, None, None
    slice_.requested_at = now
    slice_.requests += 1
    return True


ChaseVerdict = Literal["again", "given_up"]


def chase(slice_: Slice, now: datetime, answer_seconds: float, max_requests: int) -> ChaseVerdict | None:
    """A slice asked for `answer_seconds` ago without an answer (the request was lost, or dead-lettered by
    the slicer after repeated outages) is asked again, `max_requests` times in all; then it fails, so its
    jobs do not wait for ever. The slicer answers a repeated request from its cache or waits for the slice
    in progress: asking again never slices twice."""
    if slice_.state != "requested" or (now - slice_.requested_at).total_seconds() < answer_seconds:
        return None
    if slice_.requests < max_requests:
        slice_.requested_at = now
        slice_.requests += 1
        return "again"
    waited = f"{answer_seconds / 60:g} minutes" if answer_seconds >= 120 else f"{answer_seconds:g} s"
    fail(slice_, f"the slicer did not answer {slice_.requests} requests for this file ({waited} each)", "timeout", now)
    return "given_up"


def job_file(job: Job) -> dict[str, Any] | None:
    """The job's `file` as API.md shows it: the part's own when it prints as it is, else the slice it was
    dispatched with or the best known one; None while nothing is sliced yet."""
    if job.slice_basis is None and not needs_slicing(job.file):
        return {
            "kind": job.file.get("kind"),
            "sha256": job.file.get("sha256"),
            "profile": None,
            "print_minutes": job.print_minutes,
            "grams": job.grams,
        }
    chosen = job.sliced_file
    if not chosen or not chosen.get("file"):
        return None
    return {
        "kind": chosen["file"].get("kind"),
        "sha256": chosen["file"].get("sha256"),
        "profile": chosen.get("profile"),
        "print_minutes": chosen.get("print_minutes"),
        "grams": chosen.get("grams"),
    }
