"""Contract ↔ domain translation: the commands consumed messages become, and the messages the queue emits."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, get_args

from pydantic import TypeAdapter

from contracts.orders.v1 import OrderCancelled, OrderPrintRequested
from contracts.printers.v1 import PrinterChanged, PrintUpdated
from contracts.queue.v1 import (
    JobChanged,
    JobCounts,
    JobFile,
    JobPriority,
    JobStatus,
    OrderForecastChanged,
    OrderJobsSummarized,
    PartEstimate,
    SlicePart,
    StartPrint,
    StopPrint,
)
from contracts.shared_values import Assignment as AssignmentMessage
from contracts.shared_values import FileRef
from contracts.shared_values import Material as MaterialMessage
from contracts.slicer.v1 import SliceCompleted, SliceFailed
from printqueue.domain import commands, slicing
from printqueue.domain.forecast import OrderForecast
from printqueue.domain.lifecycle import PrintReport
from printqueue.domain.model import (
    Assignment,
    Job,
    LoadedMaterial,
    Material,
    OrderRecord,
    OrderSummary,
    Printer,
)
from printqueue.domain.model import JobCounts as DomainCounts
from printqueue.domain.reconciliation import DesiredLineItem, DesiredOrder, DesiredPart
from printqueue.domain.slicing import Slice
from servicekit.json_text import dumps, float_text, quote, time_text

# Consumed: contract message → command.


def reconcile_order(message: OrderPrintRequested) -> commands.ReconcileOrder:
    return commands.ReconcileOrder(desired_order(message))


def desired_order(message: OrderPrintRequested) -> DesiredOrder:
    return DesiredOrder(
        order_id=message.order_id,
        order_number=message.order_number,
        print_revision=message.print_revision,
        assignment=assignment(message.assignment),
        order_created_at=message.order_created_at,
        fulfillment_date=message.fulfillment_date,
        line_items=[
            DesiredLineItem(
                line_item_id=line.line_item_id,
                position=line.position,
                sku_id=line.sku_id,
                sku=line.sku,
                quantity=line.quantity,
                parameters=dict(line.parameters),
                parts=[
                    DesiredPart(
                        part_id=part.part_id,
                        part_name=part.part_name,
                        quantity=part.quantity,
                        material=Material(part.material.type, part.material.color, part.material.profile),
                        file=part.file.model_dump(mode="json"),
                        parameter_values=dict(part.parameter_values),
                        grams=part.grams,
                        print_minutes=part.print_minutes,
                    )
                    for part in line.parts
                ],
            )
            for line in message.line_items
        ],
    )


def assignment(message: AssignmentMessage) -> Assignment:
    return Assignment(mode=message.mode, printer_id=message.printer_id, tags=tuple(message.tags))


def cancel_order(message: OrderCancelled) -> commands.CancelOrder:
    return commands.CancelOrder(order_id=message.order_id, print_revision=message.print_revision)


def record_printer(message: PrinterChanged) -> commands.RecordPrinter:
    """The printer as reported; its dispatch notes (`avoid_until`, `dispatch_misses`) are the queue's own."""
    return commands.RecordPrinter(
        Printer(
            id=message.id,
            name=message.name,
            revision=message.revision,
            model=message.model,
            protocol=message.protocol or "bambu_lan",
            tags=tuple(message.tags),
            fabmatic=message.fabmatic,
            online=message.online,
            state=message.state,
            bed_clear=message.bed_clear,
            materials=tuple(
                LoadedMaterial(slot=m.slot, type=m.type, color=m.color, profile=m.profile) for m in message.materials
            ),
            current_job_id=message.current_job_id,
            idle_since=message.idle_since,
            deleted=message.deleted,
            updated_at=message.updated_at,
        )
    )


def apply_print_report(message: PrintUpdated) -> commands.ApplyPrintReport:
    return commands.ApplyPrintReport(
        PrintReport(
            job_id=message.job_id,
            printer_id=message.printer_id,
            status=message.status,
            sequence=message.sequence,
            occurred_at=message.occurred_at,
            command_id=message.command_id,
            progress_percent=message.progress_percent,
            error=message.error,
        )
    )


def complete_slice(message: SliceCompleted) -> commands.CompleteSlice:
    return commands.CompleteSlice(
        slice_key=message.slice_key,
        file=message.file.model_dump(mode="json"),
        profile=message.profile,
        print_minutes=message.estimate.print_minutes,
        grams=message.estimate.grams,
    )


def fail_slice(message: SliceFailed) -> commands.FailSlice:
    return commands.FailSlice(slice_key=message.slice_key, error=message.error, stage=message.stage)


# Emitted: domain → contract message.


@dataclass
class Stats:
    """What one reconciliation did to an order's jobs, for its summary."""

    added: int = 0
    cancelled: int = 0
    kept: int = 0


def jobs_summarized(order: OrderRecord, summary: OrderSummary, stats: Stats) -> OrderJobsSummarized:
    return OrderJobsSummarized(
        order_id=order.order_id,
        sequence=order.summary_sequence,
        print_revision=order.applied_revision,
        added=stats.added,
        cancelled=stats.cancelled,
        kept=stats.kept,
        line_items={k: _counts(v) for k, v in sorted(summary.line_items.items())},
        totals=_counts(summary.totals),
        estimates={
            k: [
                PartEstimate(
                    part_id=e.part_id,
                    jobs=e.jobs,
                    sliced_jobs=e.sliced_jobs,
                    grams=round(e.grams, 3),
                    print_minutes=round(e.print_minutes, 3),
                )
                for e in v
            ]
            for k, v in sorted(summary.estimates.items())
        },
    )


def _counts(counts: DomainCounts) -> JobCounts:
    return JobCounts(
        queued=counts.queued,
        printing=counts.printing,
        completed=counts.completed,
        failed=counts.failed,
        cancelled=counts.cancelled,
    )


def job_changed(job: Job) -> JobChanged:
    return JobChanged(
        id=job.id,
        order_id=job.order_id,
        order_number=job.order_number,
        line_item_id=job.line_item_id,
        sku_id=job.sku_id,
        part_id=job.part_id,
        part_name=job.part_name,
        copy_number=job.copy_number,
        status=job.status,
        printer_id=job.printer_id,
        material=_material_message(job.material),
        parameters=job.parameters,
        assignment=_assignment_message(job.assignment),
        priority=job.priority,
        progress_percent=job.progress_percent,
        error=job.error,
        file=_job_file(job),
        revision=job.revision,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@functools.lru_cache(maxsize=4096)
def _material_message(material: Material) -> MaterialMessage:
    """Built once per material (messages are frozen): a 20,000-job order's JobChanged share a handful."""
    return MaterialMessage(type=material.type, color=material.color, profile=material.profile)


@functools.lru_cache(maxsize=4096)
def _assignment_message(assignment: Assignment) -> AssignmentMessage:
    return AssignmentMessage(mode=assignment.mode, printer_id=assignment.printer_id, tags=list(assignment.tags))


def _job_file(job: Job) -> JobFile | None:
    view = slicing.job_file(job)
    if view is None:
        return None
    return _job_file_message(view["kind"], view["sha256"], view["profile"], view["print_minutes"], view["grams"])


@functools.lru_cache(maxsize=4096, typed=True)
def _job_file_message(
    kind: str, sha256: str, profile: str | None, print_minutes: float | None, grams: float | None
) -> JobFile:
    """Jobs of one part share their file: built once per file (messages are frozen; `typed`, so 1, 1.0 and
    True stay apart as validation keeps them)."""
    return JobFile(kind=kind, sha256=sha256, profile=profile, print_minutes=print_minutes, grams=grams)


class JobChangedJson:
    """`job_changed(job).model_dump_json()` rendered straight from the job's columns: a reconciliation emits one
    JobChanged per job (20,000 for a big order), and the pydantic message, its dict, the envelope validating
    that dict and dumping it again cost about 25 µs a job, most of the order's CPU. What jobs of one order share
    (material, assignment, file, parameters, texts, times) is encoded once, by the contract's own models where
    it is an object of theirs; the enumerations are checked, as validation would. One instance per batch: its
    caches live as long as it does. `test_job_changed_json` holds the two encodings to the same meaning."""

    def __init__(self) -> None:
        self._texts = _Encoded(dumps)
        self._times = _Encoded(time_text)
        self._numbers = _Encoded(float_text)
        self._parameters = _Encoded(dumps)
        self._material: tuple[Material | None, str] = (None, "")
        self._assignment: tuple[Assignment | None, str] = (None, "")

    def __call__(self, job: Job) -> str:
        if job.status not in _STATUSES or job.priority not in _PRIORITIES:
            raise ValueError(f"job {job.id}: status {job.status!r} / priority {job.priority!r} is not in the contract")
        texts, times = self._texts, self._time_json
        if job.material is not self._material[0]:
            self._material = (job.material, _material_json(job.material))
        if job.assignment is not self._assignment[0]:
            self._assignment = (job.assignment, _assignment_json(job.assignment))
        return (
            f'{{"id":{quote(job.id)},"order_id":{texts[job.order_id]},"order_number":{texts[job.order_number]}'
            f',"line_item_id":{texts[job.line_item_id]},"sku_id":{texts[job.sku_id]},"part_id":{texts[job.part_id]}'
            f',"part_name":{texts[job.part_name]},"copy_number":{int(job.copy_number)},"status":"{job.status}"'
            f',"printer_id":{"null" if job.printer_id is None else quote(job.printer_id)}'
            f',"material":{self._material[1]}'
            f',"parameters":{self._parameters_json(job.parameters)}'
            f',"assignment":{self._assignment[1]},"priority":"{job.priority}"'
            f',"progress_percent":{self._numbers[float(job.progress_percent)]},"error":{texts[job.error]}'
            f',"file":{self._file_json(job)},"revision":{int(job.revision)},"created_at":{times(job.created_at)}'
            f',"started_at":{times(job.started_at)},"finished_at":{times(job.finished_at)}}}'
        )

    def _time_json(self, value: datetime | None) -> str:
        """Keyed by the moment and its offset: moments equal across offsets (12:00+02:00 == 10:00Z) are one dict
        key, and pydantic writes each with its own offset."""
        key = (value, value.utcoffset()) if value is not None else None
        found = self._times.get(key)
        return found if found is not None else self._times.put(key, value)

    def _parameters_json(self, value: dict[str, Any]) -> str:
        return _by_repr(self._parameters, value)

    @staticmethod
    def _file_json(job: Job) -> str:
        """`slicing.job_file`'s view without building it for the common case, a part printed from its own file."""
        if job.slice_basis is None:
            kind = job.file.get("kind")
            if kind not in slicing.SOURCE_KINDS:
                return _job_file_text(kind, job.file.get("sha256"), None, job.print_minutes, job.grams)
        return _job_file_json(job)


def _by_repr(encoded: _Encoded, value: Any) -> str:
    """Keyed by `repr`, as `mappers.copy_records` does: one repr, one JSON text (`==` has 1 == 1.0 == True)."""
    key = repr(value)
    found = encoded.get(key)
    return found if found is not None else encoded.put(key, value)


class _Encoded(dict[Any, str]):
    """JSON texts by value, each encoded once at its first lookup; cleared when it grows past `_LIMIT`."""

    def __init__(self, encode: Callable[[Any], str]) -> None:
        super().__init__()
        self.encode = encode

    def __missing__(self, value: Any) -> str:
        return self.put(value, value)

    def put(self, key: Any, value: Any) -> str:
        if len(self) >= _LIMIT:
            self.clear()
        text = self[key] = self.encode(value)
        return text


_LIMIT = 4096
_STATUSES = frozenset(get_args(JobStatus))
_PRIORITIES = frozenset(get_args(JobPriority))
@functools.lru_cache(maxsize=4096)
def _material_json(material: Material) -> str:
    return _material_message(material).model_dump_json()


@functools.lru_cache(maxsize=4096)
def _assignment_json(assignment: Assignment) -> str:
    return _assignment_message(assignment).model_dump_json()


def _job_file_json(job: Job) -> str:
    view = slicing.job_file(job)
    if view is None:
        return "null"
    return _job_file_text(view["kind"], view["sha256"], view["profile"], view["print_minutes"], view["grams"])


@functools.lru_cache(maxsize=4096, typed=True)
def _job_file_text(
    kind: str, sha256: str, profile: str | None, print_minutes: float | None, grams: float | None
) -> str:
    return _job_file_message(kind, sha256, profile, print_minutes, grams).model_dump_json()


def start_print(job: Job, deadline_seconds: float, issued_at: datetime, slots: Iterable[int] = ()) -> StartPrint:
    """The file is the part's own, or for a part that needed slicing the slice made for the printer's model;
    `slots` are the printer's spools matching judged to serve the job (a close colour included)."""
    assert job.printer_id is not None and job.command_id is not None
    sliced = job.sliced_file if job.slice_basis is not None else None
    assert job.slice_basis is None or (sliced is not None and sliced.get("file") is not None)
    return StartPrint(
        command_id=job.command_id,
        job_id=job.id,
        printer_id=job.printer_id,
        order_number=job.order_number,
        part_name=job.part_name,
        file=FileRef.model_validate(sliced["file"] if sliced is not None else job.file),
        material=MaterialMessage(type=job.material.type, color=job.material.color, profile=job.material.profile),
        parameters=job.parameters,
        attempt=job.dispatch_attempts,
        fulfillment_date=job.fulfillment_date,
        deadline_seconds=deadline_seconds,
        issued_at=issued_at,
        slots=list(slots),
    )


class StartPrintJson:
    """`start_print(job, deadline_seconds, issued_at, slots).model_dump_json()` rendered straight from the job's
    columns, as `JobChangedJson` renders JobChanged: a pass over a whole fleet sends one StartPrint per dispatch
    (10,000), and the pydantic message, its dict and the envelope validating it were a large share of such a
    pass's CPU. The file is validated by the contract's own `FileRef`, once per distinct file. One instance per
    batch (its caches live as long as it does); `test_start_print_json` holds the two encodings to the same
    meaning."""

    def __init__(self, deadline_seconds: float) -> None:
        self._texts = _Encoded(dumps)
        self._dates = _Encoded(_date_text)
        self._parameters = _Encoded(dumps)
        self._files = _Encoded(_file_ref_json)
        self._deadline = float_text(float(deadline_seconds))
        self._issued: tuple[datetime | None, str] = (None, "")

    def __call__(self, job: Job, issued_at: datetime, slots: Iterable[int] = ()) -> str:
        """A batch's commands issued at one moment (the same `issued_at`) share its text."""
        assert job.printer_id is not None and job.command_id is not None
        sliced = job.sliced_file if job.slice_basis is not None else None
        assert job.slice_basis is None or (sliced is not None and sliced.get("file") is not None)
        texts = self._texts
        file = _by_repr(self._files, sliced["file"] if sliced is not None else job.file)
        if issued_at is not self._issued[0]:
            self._issued = (issued_at, time_text(issued_at))
        return (
            f'{{"command_id":{quote(job.command_id)},"job_id":{quote(job.id)}'
            f',"printer_id":{quote(job.printer_id)},"order_number":{texts[job.order_number]}'
            f',"part_name":{texts[job.part_name]},"file":{file},"material":{_material_json(job.material)}'
            f',"parameters":{_by_repr(self._parameters, job.parameters)},"attempt":{int(job.dispatch_attempts)}'
            f',"fulfillment_date":{self._dates[job.fulfillment_date]},"deadline_seconds":{self._deadline}'
            f',"issued_at":{self._issued[1]},"slots":[{",".join(map(str, map(int, slots)))}]}}'
        )


_date_json = TypeAdapter(date).dump_json


def _date_text(value: date | None) -> str:
    return "null" if value is None else _date_json(value).decode()


def _file_ref_json(file: dict[str, Any]) -> str:
    return FileRef.model_validate(file).model_dump_json()


def stop_print(command_id: str, job: Job, printer_id: str, issued_at: datetime) -> StopPrint:
    return StopPrint(command_id=command_id, job_id=job.id, printer_id=printer_id, issued_at=issued_at)


def slice_part(requested: Slice) -> SlicePart:
    return SlicePart(
        slice_key=requested.key,
        source=FileRef.model_validate(requested.source),
        parameters=requested.parameters,
        printer_model=requested.printer_model,
        fabmatic=requested.fabmatic,
        material=MaterialMessage(type=requested.material.type, profile=requested.material.profile),
        requested_at=requested.requested_at,
    )


def forecast_changed(order: OrderForecast, generated_at: datetime) -> OrderForecastChanged:
    return OrderForecastChanged(
        order_id=order.order_id,
        generated_at=generated_at,
        completes_at=order.completes_at,
        late=order.late,
        blocked_by=order.blocked_by,
    )
