"""Rows ↔ domain objects for the queue's tables: jobs (also as COPY records), slices and printers."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from printqueue.domain.model import Assignment, Job, LoadedMaterial, Material, Printer
from printqueue.domain.slicing import Slice


@functools.lru_cache(maxsize=4096)
def _shared_material(kind: str, color: str | None, profile: str | None) -> Material:
    """Jobs of one order share a handful of materials and assignments: build each once (they are frozen)."""
    return Material(type=kind, color=color, profile=profile)


@functools.lru_cache(maxsize=4096)
def _shared_assignment(mode: str, printer_id: str | None, tags: tuple[str, ...]) -> Assignment:
    return Assignment(mode=mode, printer_id=printer_id, tags=tags)  # type: ignore[arg-type]


def material_of(kind: str, color: str | None, profile: str | None) -> Material:
    """One shared `Material` per distinct value (the matching pass builds tens of thousands of candidates)."""
    return _shared_material(kind, color, profile)


def _material(row: Any) -> Material:
    return _shared_material(row.material_type, row.material_color, row.material_profile)


def assignment_from_json(value: dict[str, Any]) -> Assignment:
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
        assignment=assignment_from_json(row.assignment),
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


JOB_RECORD_COLUMNS = (
    "id", "order_id", "order_number", "line_item_id", "line_position", "sku_id", "sku", "part_id", "part_index",
    "part_name", "copy_number", "material_type", "material_color", "material_profile", "parameters::text",
    "file::text", "assignment::text", "order_created_at", "created_at", "updated_at", "fulfillment_date", "grams",
    "print_minutes", "priority", "status", "wanted", "printer_id", "progress_percent", "error", "revision", "attempt",
    "dispatch_attempts", "command_id", "dispatch_deadline", "last_sequence", "cancel_requested", "started_at",
    "finished_at", "slice_basis", "sliced_file::text",
)
"""What `jobs_from_records` reads, in its order: `Job`'s fields (its material as three columns), JSON as text."""


def job_record_columns(table: str) -> str:
    """`JOB_RECORD_COLUMNS` of `table` (an alias) as a select list."""
    return ", ".join(f"{table}.{column}" for column in JOB_RECORD_COLUMNS)


def jobs_from_records(records: Iterable[Sequence[Any]]) -> list[Job]:
    """Jobs from rows that begin with `JOB_RECORD_COLUMNS` (any columns after them are ignored), read by position,
    each distinct JSON text decoded once: the jobs of an order share their parameters, file and assignment, and a
    pass claiming 10,000 jobs spent more CPU decoding their JSON and reading 40 columns by name than PostgreSQL
    spent claiming them. Each job gets its own top-level dicts, as `job_from_row` gives it."""
    decoded = _DecodedTexts()
    width = len(JOB_RECORD_COLUMNS)
    jobs: list[Job] = []
    for record in records:
        (
            id_, order_id, order_number, line_item_id, line_position, sku_id, sku, part_id, part_index, part_name,
            copy_number, kind, color, profile, parameters, file, assignment, order_created_at, created_at,
            updated_at, fulfillment_date, grams, print_minutes, priority, status, wanted, printer_id,
            progress_percent, error, revision, attempt, dispatch_attempts, command_id, dispatch_deadline,
            last_sequence, cancel_requested, started_at, finished_at, slice_basis, sliced_file,
        ) = record[:width]
        sliced = decoded[sliced_file] if sliced_file is not None else None  # SQL or JSON null: none
        jobs.append(Job(
            id=id_, order_id=order_id, order_number=order_number, line_item_id=line_item_id,
            line_position=line_position, sku_id=sku_id, sku=sku, part_id=part_id, part_index=part_index,
            part_name=part_name, copy_number=copy_number, material=_shared_material(kind, color, profile),
            parameters=dict(decoded[parameters]), file=dict(decoded[file]),
            assignment=assignment_from_text(assignment),
            order_created_at=order_created_at, created_at=created_at, updated_at=updated_at,
            fulfillment_date=fulfillment_date, grams=grams, print_minutes=print_minutes, priority=priority,
            status=status, wanted=wanted, printer_id=printer_id, progress_percent=progress_percent, error=error,
            revision=revision, attempt=attempt, dispatch_attempts=dispatch_attempts, command_id=command_id,
            dispatch_deadline=dispatch_deadline, last_sequence=last_sequence, cancel_requested=cancel_requested,
            started_at=started_at, finished_at=finished_at, slice_basis=slice_basis,
            sliced_file=dict(sliced) if sliced is not None else None,
        ))
    return jobs


class _DecodedTexts(dict[str, Any]):
    """JSON values by their text, each decoded at its first lookup: to be copied, not handed out."""

    def __missing__(self, text: str) -> Any:
        value = self[text] = json.loads(text)
        return value


@functools.lru_cache(maxsize=65536)
def assignment_from_text(text: str) -> Assignment:
    """An assignment from its JSON text, decoded once per distinct text: a pass reads one per requirement group
    and per claimed job (pinned jobs make a group per printer they name: thousands per pass)."""
    return assignment_from_json(json.loads(text))


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


def copy_records(jobs: Iterable[Job]) -> Iterator[tuple[Any, ...]]:
    """`job_values` of each job as a COPY record (JSON columns as text), without a dict per job. Lazy: the
    driver pulls records as it sends them, so PostgreSQL ingests the first ones while later ones are built.
    Jobs of one run share their parameters and file: each distinct one is encoded once."""
    parameters, file = _TextCache(), _TextCache()
    dumps = json.dumps
    for j in jobs:
        yield (
            j.id, j.order_id, j.order_number, j.line_item_id, j.line_position, j.sku_id, j.sku, j.part_id,
            j.part_index, j.part_name, j.copy_number, j.status, j.wanted, j.printer_id, j.material.type,
            j.material.color, j.material.profile, parameters.of(j.parameters), file.of(j.file),
            _assignment_text(j.assignment), j.priority, j.fulfillment_date, j.order_created_at, j.grams,
            j.print_minutes, j.progress_percent, j.error, j.revision, j.attempt, j.dispatch_attempts, j.command_id,
            j.dispatch_deadline, j.last_sequence, j.cancel_requested, j.created_at, j.updated_at, j.started_at,
            j.finished_at, j.slice_basis, None if j.sliced_file is None else dumps(j.sliced_file),
        )


class _TextCache:
    """JSON texts of the values encoded so far, by `repr`: JSON-typed values with one `repr` have one JSON
    text (unlike `==`, which holds 1 == 1.0 == True), and `repr` costs a third of encoding."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def of(self, value: dict[str, Any]) -> str:
        key = repr(value)
        text = self.texts.get(key)
        if text is None:
            if len(self.texts) >= 1024:
                self.texts.clear()
            text = self.texts[key] = json.dumps(value)
        return text


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


@functools.lru_cache(maxsize=4096)
def _loaded(slot: int, kind: str, color: str | None, profile: str | None) -> LoadedMaterial:
    """One shared `LoadedMaterial` per distinct spool (frozen): a pass reads every ready printer, 10,000 of them
    loading a few dozen distinct spools, and a frozen dataclass costs more to build than to look up."""
    return LoadedMaterial(slot=slot, type=kind, color=color, profile=profile)


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
        materials=tuple(_loaded(m["slot"], m["type"], m.get("color"), m.get("profile")) for m in row.materials),
        current_job_id=row.current_job_id,
        idle_since=row.idle_since,
        deleted=row.deleted,
        avoid_until=row.avoid_until,
        dispatch_misses=row.dispatch_misses,
        updated_at=row.updated_at,
    )


PRINTER_RECORD_COLUMNS = (
    "id", "name", "revision", "model", "protocol", "tags::text", "fabmatic", "online", "state", "bed_clear",
    "materials::text", "current_job_id", "idle_since", "deleted", "avoid_until", "dispatch_misses", "updated_at",
)
"""What `printers_from_records` reads, in its order: `Printer`'s fields, JSON as text."""


def printers_from_records(records: Iterable[Sequence[Any]]) -> list[Printer]:
    """Printers from rows of `PRINTER_RECORD_COLUMNS`, by position, their tags and spools decoded once per distinct
    text and shared (tuples of frozen values): a pass over a whole fleet reads 10,000 printers, and decoding two
    JSON values and reading 17 columns by name per printer was a tenth of its CPU."""
    tags_of, materials_of = _TagsOfText(), _MaterialsOfText()
    return [
        Printer(
            id=id_, name=name, revision=revision, model=model, protocol=protocol, tags=tags_of[tags],
            fabmatic=fabmatic, online=online, state=state, bed_clear=bed_clear, materials=materials_of[materials],
            current_job_id=current_job_id, idle_since=idle_since, deleted=deleted, avoid_until=avoid_until,
            dispatch_misses=dispatch_misses, updated_at=updated_at,
        )
        for (
            id_, name, revision, model, protocol, tags, fabmatic, online, state, bed_clear, materials,
            current_job_id, idle_since, deleted, avoid_until, dispatch_misses, updated_at,
        ) in records
    ]


class _TagsOfText(dict[str, tuple[str, ...]]):
    def __missing__(self, text: str) -> tuple[str, ...]:
        value = self[text] = tuple(json.loads(text))
        return value


class _MaterialsOfText(dict[str, tuple[LoadedMaterial, ...]]):
    def __missing__(self, text: str) -> tuple[LoadedMaterial, ...]:
        value = self[text] = tuple(
            _loaded(m["slot"], m["type"], m.get("color"), m.get("profile")) for m in json.loads(text)
        )
        return value


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
