"""Slicing in the queue: the pure rules (keys, which models to slice for, what answers mean for a job,
matching only to sliced models) and the handlers over the in-memory unit of work."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st
from queue_fakes import InMemoryQueueRepository, InMemoryUnitOfWork

from contracts.orders.v1 import DesiredLineItem, DesiredPart, OrderPrintRequested
from contracts.printers.v1 import LoadedMaterial as LoadedMaterialMessage
from contracts.printers.v1 import PrinterChanged
from contracts.queue.v1 import JobChanged, OrderJobsSummarized, SlicePart, StartPrint
from contracts.shared_values import Assignment as AssignmentMessage
from contracts.shared_values import FileRef
from contracts.shared_values import Material as MaterialMessage
from contracts.slicer.v1 import SLICED_FILES_BUCKET, SliceCompleted, SliceEstimate, SliceFailed
from printqueue.domain import commands, slicing
from printqueue.domain.commands import ChaseUnansweredSlices, RunMatchingPass
from printqueue.domain.lifecycle import DispatchPolicy
from printqueue.domain.matching import explain, match
from printqueue.domain.model import Assignment, Job, LoadedMaterial, Material, Printer, Target
from printqueue.domain.slicing import Slice
from printqueue.service_layer import handlers, messages, operator_actions
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.matching_pass import run_matching_pass
from printqueue.service_layer.slice_requests import chase_unanswered_slices

T0 = datetime(2026, 1, 1, tzinfo=UTC)
R = TypeVar("R")
C = TypeVar("C")
STL = FileRef(sha256="5" * 64, filename="bracket.stl", kind="stl", size_bytes=684)
SCAD = FileRef(sha256="c" * 64, filename="tag.scad", kind="scad", size_bytes=120)
SLICED = FileRef(sha256="a" * 64, filename="box.gcode.3mf", kind="gcode.3mf", size_bytes=100)
PARSER_ERROR = "ERROR: Parser error in file tag.scad, line 3"


# ---- pure rules


def job(file: FileRef = STL, parameters: dict[str, Any] | None = None, material: Material | None = None,
        assignment: Assignment | None = None, job_id: str = "j1") -> Job:
    made = Job(
        id=job_id, order_id="o1", order_number="1001", line_item_id="l1", line_position=0, sku_id="s1", sku="TAG",
        part_id="p1", part_index=0, part_name="tag", copy_number=1, material=material or Material("PLA", "#FF0000"),
        parameters=parameters or {}, file=file.model_dump(mode="json"), assignment=assignment or Assignment(),
        order_created_at=T0, created_at=T0, updated_at=T0,
    )
    made.slice_basis = slicing.slice_basis(made)
    return made


def printer(printer_id: str, model: str, *, fabmatic: bool = False, tags: tuple[str, ...] = (),
            material: str = "PLA") -> Printer:
    return Printer(
        id=printer_id, name=printer_id, revision=1, model=model, tags=tags, fabmatic=fabmatic, online=True,
        state="idle", bed_clear=True, materials=(LoadedMaterial(0, material, "#FF0000"),),
        idle_since=T0 - timedelta(minutes=len(printer_id)),
    )


def a_slice(target: Target, state: str, basis: str = "b", error: str | None = None,
            answered: datetime | None = None) -> Slice:
    return Slice(
        key=f"{target[0]}-{target[1]}", basis=basis, printer_model=target[0], fabmatic=target[1], source={},
        parameters={}, material=Material("pla"), requested_at=T0, state=state,  # type: ignore[arg-type]
        file=SLICED.model_dump(mode="json") if state == "completed" else None, error=error, answered_at=answered,
    )


def test_only_meshes_and_openscad_sources_are_sliced() -> None:
    assert [k for k in ("scad", "stl", "3mf", "gcode.3mf", "gcode") if slicing.needs_slicing({"kind": k})] == [
        "scad", "stl", "3mf"
    ]
    assert job(SLICED).slice_basis is None


def test_the_key_is_the_inputs_the_colour_is_not_and_a_mesh_ignores_parameter_values() -> None:
    x1c: Target = ("X1C", False)
    a = job(SCAD, {"label": "Ada", "size": 10})
    same = job(SCAD, {"size": 10.0, "label": "Ada"}, Material(" pla ", "#00FF00"))
    other_text = job(SCAD, {"label": "Bob", "size": 10})
    assert slicing.slice_key(a, x1c) == slicing.slice_key(same, x1c)
    assert slicing.slice_key(a, x1c) != slicing.slice_key(other_text, x1c)
    assert slicing.slice_key(a, x1c) != slicing.slice_key(a, ("X1C", True))
    assert slicing.slice_key(a, x1c) != slicing.slice_key(a, ("A1", False))
    assert slicing.slice_key(a, x1c) != slicing.slice_key(job(SCAD, {"label": "Ada", "size": 10},
                                                              Material("PETG")), x1c)
    assert slicing.slice_key(job(STL, {"label": "Ada"}), x1c) == slicing.slice_key(job(STL, {"label": "Bob"}), x1c)
    assert len(slicing.slice_key(a, x1c)) == 64


def test_slices_are_made_for_the_models_of_the_printers_that_fit_the_assignment() -> None:
    printers = [
        printer("x1", "X1C", tags=("big",)), printer("x2", "X1C"), printer("p1", "P1S", fabmatic=True),
        printer("a1", "A1", material="TPU"), printer("blank", ""),
    ]
    gone = printer("old", "P1P")
    gone.deleted = True
    printers.append(gone)
    assert slicing.fitting_targets(Assignment(), printers) == {
        ("X1C", False), ("P1S", True), ("A1", False)
    }, "every model, the loaded material is not asked (it can be loaded later)"
    assert slicing.fitting_targets(Assignment("tags", tags=("BIG",)), printers) == {("X1C", False)}
    assert slicing.fitting_targets(Assignment("printer", printer_id="p1"), printers) == {("P1S", True)}
    assert slicing.fitting_targets(Assignment("printer", printer_id="nope"), printers) == frozenset()


def test_a_job_is_queued_once_one_model_is_sliced_and_fails_only_when_every_model_failed() -> None:
    x1c, a1 = ("X1C", False), ("A1", False)
    assert slicing.judge([x1c, a1], {}).verdict == "slicing"
    assert slicing.judge([], {}).verdict == "slicing", "no printer fits yet: nothing to slice for"
    assert slicing.judge([x1c, a1], {x1c: a_slice(x1c, "requested"), a1: a_slice(a1, "failed")}).verdict == "slicing"
    done = slicing.judge([x1c, a1], {x1c: a_slice(x1c, "completed"), a1: a_slice(a1, "failed")})
    assert done.verdict == "queued" and done.chosen is not None and done.chosen.target == x1c
    failed = slicing.judge([x1c, a1], {
        x1c: a_slice(x1c, "failed", error="older", answered=T0),
        a1: a_slice(a1, "failed", error="ERROR: Parser error in line 3", answered=T0 + timedelta(seconds=1)),
    })
    assert (failed.verdict, failed.error) == ("failed", "ERROR: Parser error in line 3")
    voron = ("Voron 2.4", False)
    no_profile = a_slice(voron, "failed", error="no printer profile for model 'Voron 2.4'",
                         answered=T0 + timedelta(seconds=2))
    no_profile.stage = "profile"
    tool_said = a_slice(x1c, "failed", error="ERROR: Parser error in line 3", answered=T0)
    tool_said.stage = "render"
    later_profile = slicing.judge([x1c, voron], {x1c: tool_said, voron: no_profile})
    assert later_profile.error == "ERROR: Parser error in line 3", "the part's fault before a model without a profile"
    only_profile = slicing.judge([voron], {voron: no_profile})
    assert only_profile.error == "no printer profile for model 'Voron 2.4'"
    other = ("P1S", True)
    assert slicing.judge([x1c], {other: a_slice(other, "completed")}).verdict == "slicing"


def test_settling_moves_only_waiting_jobs_and_a_late_failure_never_undoes_a_file() -> None:
    x1c: Target = ("X1C", False)
    waiting = job()
    waiting.status = "slicing"
    assert slicing.settle(waiting, slicing.judge([x1c], {x1c: a_slice(x1c, "completed")}), T0)
    assert waiting.status == "queued" and waiting.sliced_file is not None
    assert slicing.job_file(waiting) == {"kind": "gcode.3mf", "sha256": "a" * 64, "profile": None,
                                         "print_minutes": None, "grams": None}
    printing = job()
    printing.status = "printing"
    assert not slicing.settle(printing, slicing.SlicingOutcome("failed", error="x"), T0)
    made = a_slice(x1c, "completed")
    assert not slicing.fail(made, "late failure", "slice", T0) and made.state == "completed"
    failed = a_slice(x1c, "requested")
    assert slicing.fail(failed, "bad", "render", T0) and not slicing.fail(failed, "again", "render", T0)
    assert slicing.complete(failed, SLICED.model_dump(mode="json"), "X1C 0.20mm", 12.0, 3.5, T0)
    assert not slicing.complete(failed, {}, "other", 1.0, 1.0, T0) and failed.profile == "X1C 0.20mm"


def test_the_part_s_own_file_is_the_job_s_file_when_it_prints_as_it_is() -> None:
    presliced = job(SLICED)
    presliced.grams, presliced.print_minutes = 12.5, 30.0
    assert slicing.job_file(presliced) == {"kind": "gcode.3mf", "sha256": "a" * 64, "profile": None,
                                           "print_minutes": 30.0, "grams": 12.5}
    assert slicing.job_file(job(STL)) is None


MODELS: list[Target] = [("X1C", False), ("P1S", True), ("A1", False)]


@settings(max_examples=200, deadline=None)
@given(
    models=st.lists(st.sampled_from(MODELS), min_size=1, max_size=6),
    sliced=st.dictionaries(st.sampled_from(["b1", "b2"]), st.frozensets(st.sampled_from(MODELS))),
    bases=st.lists(st.sampled_from(["b1", "b2", None]), min_size=1, max_size=8),
)
def test_a_sliced_job_goes_only_to_a_printer_of_a_model_it_has_a_slice_for(
    models: list[Target], sliced: dict[str, frozenset[Target]], bases: list[str | None]
) -> None:
    printers = [printer(f"p{i}", model, fabmatic=fab) for i, (model, fab) in enumerate(models)]
    jobs = []
    for index, basis in enumerate(bases):
        queued = job(SLICED if basis is None else STL, job_id=f"j{index}")
        queued.slice_basis = basis
        jobs.append(queued)
    # These printers are all Bambu ones, and so are the files sliced for their models.
    dispatches = match(jobs, printers, {b: frozenset((m, f, "bambu") for m, f in ts) for b, ts in sliced.items()})
    by_id = {p.id: p for p in printers}
    jobs_by_id = {j.id: j for j in jobs}
    for d in dispatches:
        basis = jobs_by_id[d.job_id].slice_basis
        target = (by_id[d.printer_id].model, by_id[d.printer_id].fabmatic)
        assert basis is None or target in sliced.get(basis, frozenset())
    # Greedy and complete: no printer left idle while a job that fits it waits.
    taken = {d.printer_id for d in dispatches}
    placed = {d.job_id for d in dispatches}
    for waiting in jobs:
        if waiting.id in placed:
            continue
        for free in printers:
            if free.id in taken:
                continue
            target = (free.model, free.fabmatic)
            assert waiting.slice_basis is not None and target not in sliced.get(waiting.slice_basis, frozenset())


def test_the_matching_explanation_names_the_file_for_each_model() -> None:
    x1c, a1, p1s = ("X1C", False), ("A1", False), ("P1S", True)
    waiting = job()
    printers = [(printer("x", "X1C"), False), (printer("a", "A1"), False), (printer("p", "P1S", fabmatic=True), False),
                (printer("q", "P1P"), False)]
    verdicts = explain(waiting, printers, T0, {
        x1c: a_slice(x1c, "completed"), a1: a_slice(a1, "requested"),
        p1s: a_slice(p1s, "failed", error="no profile fits"),
    })
    results = {v.printer_id: (v.result, v.detail) for v in verdicts}
    assert results["x"] == ("matched", None)
    assert results["a"][0] == "slicing"
    assert results["p"] == ("file_mismatch", "slicing for P1S (FabMatic) failed: no profile fits")
    assert results["q"] == ("file_mismatch", "no file sliced for P1P")
    assert {v.result for v in explain(job(SLICED), printers, T0)} == {"matched"}


# ---- handlers


class Queue:
    def __init__(self) -> None:
        self.store = InMemoryQueueRepository()
        self.now = T0
        self.ids = (f"id-{n:05d}" for n in itertools.count())
        self.deps = Deps(clock=lambda: self.now, ids=lambda: next(self.ids),
                           policy=DispatchPolicy(deadline_seconds=60, max_dispatch_attempts=2))
        self.sent: list[Any] = []
        self.revisions: dict[str, int] = {}
        self.print_revision = 0

    async def do(self, action: Callable[[InMemoryUnitOfWork], Awaitable[R]]) -> tuple[R, list[Any]]:
        uow = InMemoryUnitOfWork(self.store)
        result = await action(uow)
        self.sent.extend(uow.messages)
        return result, uow.messages

    async def handle(
        self, handler: Callable[[C, InMemoryUnitOfWork, Deps], Awaitable[R]], cmd: C
    ) -> tuple[R, list[Any]]:
        """A handler given the command, a fresh unit of work (it owns the transaction) and the deps."""
        return await self.do(lambda uow: handler(cmd, uow, self.deps))

    async def order(self, lines: dict[str, dict[str, Any]], file: FileRef = SCAD, order_id: str = "o1",
                    quantity: int = 1, grams: float | None = None) -> list[Any]:
        self.print_revision += 1
        message = OrderPrintRequested(
            order_id=order_id, order_number=f"#{order_id}", print_revision=self.print_revision,
            assignment=AssignmentMessage(), order_created_at=T0,
            line_items=[
                DesiredLineItem(
                    line_item_id=line_id, position=position, sku_id="s1", sku="TAG", quantity=quantity,
                    parameters=values,
                    parts=[DesiredPart(part_id="tag", part_name="tag", quantity=1,
                                       material=MaterialMessage(type="PLA", color="#FF0000"), file=file, grams=grams)],
                )
                for position, (line_id, values) in enumerate(lines.items())
            ],
        )
        return (await self.handle(handlers.reconcile_order, messages.reconcile_order(message)))[1]

    async def printer(self, printer_id: str, model: str, **state: Any) -> list[Any]:
        revision = self.revisions[printer_id] = self.revisions.get(printer_id, 0) + 1
        fields: dict[str, Any] = {
            "name": printer_id, "model": model, "online": True, "state": "idle", "bed_clear": True,
            "materials": [LoadedMaterialMessage(slot=0, type="PLA", color="#FF0000")],
            "idle_since": T0 - timedelta(minutes=len(self.revisions)), "updated_at": self.now, **state,
        }
        message = PrinterChanged(id=printer_id, revision=revision, **fields)
        return (await self.handle(handlers.record_printer, messages.record_printer(message)))[1]

    async def completed(self, request: SlicePart, sha: str = "e" * 64, minutes: float = 42.0,
                        grams: float = 9.5) -> list[Any]:
        message = SliceCompleted(
            slice_key=request.slice_key, source_sha256=request.source.sha256, parameters=request.parameters,
            printer_model=request.printer_model, fabmatic=request.fabmatic, material=request.material,
            profile=f"{request.printer_model} 0.20mm", estimate=SliceEstimate(print_minutes=minutes, grams=grams),
            file=FileRef(sha256=sha, filename="tag.gcode.3mf", kind="gcode.3mf", size_bytes=4096,
                         bucket=SLICED_FILES_BUCKET),
            completed_at=self.now,
        )
        return (await self.handle(handlers.complete_slice, messages.complete_slice(message)))[1]

    async def failed(self, request: SlicePart, error: str = PARSER_ERROR) -> list[Any]:
        message = SliceFailed(
            slice_key=request.slice_key, source_sha256=request.source.sha256, printer_model=request.printer_model,
            fabmatic=request.fabmatic, material=request.material, stage="render", error=error, failed_at=self.now,
        )
        return (await self.handle(handlers.fail_slice, messages.fail_slice(message)))[1]

    async def match(self) -> list[Any]:
        return (await self.do(lambda uow: run_matching_pass(RunMatchingPass(), uow, self.deps)))[1]

    def jobs(self, line: str | None = None) -> list[Job]:
        return sorted((j for j in self.store.jobs.values() if line is None or j.line_item_id == line),
                      key=lambda j: (j.line_item_id, j.copy_number))

    def requests(self) -> list[SlicePart]:
        return of(SlicePart, self.sent)


def of(kind: type[R], messages: list[Any]) -> list[R]:
    return [m for m in messages if isinstance(m, kind)]


async def test_a_scad_job_is_sliced_ahead_for_each_model_once_and_prints_only_where_it_was_sliced() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.printer("a1", "A1")
    sent = await queue.order({"l1": {"label": "Ada"}}, quantity=2)
    requests = of(SlicePart, sent)
    assert sorted(r.printer_model for r in requests) == ["A1", "X1C"]
    assert {r.parameters["label"] for r in requests} == {"Ada"} and requests[0].source == SCAD
    assert requests[0].material.color is None
    assert [j.status for j in queue.jobs()] == ["slicing", "slicing"]
    assert {m.status for m in of(JobChanged, sent)} == {"slicing"}
    assert of(OrderJobsSummarized, sent)[0].totals.queued == 2, "orders count slicing as queued"

    # The same click again, and another order with the same part and values: nothing new to slice.
    await queue.order({"l1": {"label": "Ada"}}, quantity=2)
    await queue.order({"lx": {"label": "Ada"}}, order_id="o2")
    assert len(queue.requests()) == 2
    assert await queue.match() == []

    x1c = next(r for r in requests if r.printer_model == "X1C")
    sent = await queue.completed(x1c)
    assert {j.status for j in queue.store.jobs.values()} == {"queued"}
    changed = of(JobChanged, sent)
    assert len(changed) == 3 and {c.file.sha256 if c.file else None for c in changed} == {"e" * 64}
    assert changed[0].file is not None and changed[0].file.print_minutes == 42.0
    assert await queue.completed(x1c) == [], "a duplicate answer changes nothing"

    (start,) = of(StartPrint, await queue.match())
    assert start.printer_id == "x1" and start.file.bucket == SLICED_FILES_BUCKET and start.file.sha256 == "e" * 64
    dispatched = queue.store.jobs[start.job_id]
    assert dispatched.sliced_file is not None and dispatched.sliced_file["printer_model"] == "X1C"
    assert await queue.match() == [], "the A1 has no slice yet"

    a1 = next(r for r in requests if r.printer_model == "A1")
    await queue.completed(a1, sha="f" * 64)
    (second,) = of(StartPrint, await queue.match())
    assert (second.printer_id, second.file.sha256) == ("a1", "f" * 64)


async def test_orders_learn_the_sliced_grams_of_each_part_when_a_slice_answers_and_at_dispatch() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.printer("a1", "A1")
    sent = await queue.order({"l1": {"label": "Ada"}}, quantity=2)
    (before,) = of(OrderJobsSummarized, sent)
    assert [(e.part_id, e.jobs, e.sliced_jobs, e.grams) for e in before.estimates["l1"]] == [("tag", 2, 0, 0.0)]

    requests = {r.printer_model: r for r in queue.requests()}
    (after,) = of(OrderJobsSummarized, await queue.completed(requests["A1"], grams=9.5, minutes=42.0))
    assert after.sequence > before.sequence and after.totals == before.totals, "counts alike, estimates newer"
    (tag,) = after.estimates["l1"]
    assert (tag.jobs, tag.sliced_jobs, tag.grams, tag.print_minutes) == (2, 2, 19.0, 84.0)

    assert await queue.completed(requests["X1C"], sha="f" * 64, grams=12.25) == [], "queued jobs keep their slice"
    # A dispatch takes no order lock (it holds job rows): a job printing another model's slice is
    # re-counted by the summary its start sends.
    assert of(OrderJobsSummarized, await queue.match()) == []


async def test_a_failed_slice_fails_the_job_with_the_tool_s_message_only_when_no_model_is_left() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.printer("a1", "A1")
    await queue.order({"l1": {"label": "Ada"}})
    x1c, a1 = sorted(queue.requests(), key=lambda r: r.printer_model, reverse=True)
    await queue.failed(x1c, "no profile fits X1C")
    assert queue.jobs()[0].status == "slicing"
    sent = await queue.failed(a1)
    job_now = queue.jobs()[0]
    assert (job_now.status, job_now.error) == ("failed", "ERROR: Parser error in file tag.scad, line 3")
    assert of(OrderJobsSummarized, sent)[0].totals.failed == 1
    await queue.completed(a1)
    assert queue.store.slices[a1.slice_key].state == "completed", "a success after a failure is kept ..."
    assert queue.jobs()[0].status == "failed", "... but a failed job waits for the operator's retry"

    retried, sent = await queue.handle(operator_actions.retry_job, commands.RetryJob(job_now.id))
    assert retried.status == "queued" and of(SlicePart, sent) == [], "the A1 slice exists now"


async def test_a_retry_asks_the_slicer_again_when_every_slice_had_failed() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.order({"l1": {"label": "Ada"}})
    (request,) = queue.requests()
    await queue.failed(request)
    job_id = queue.jobs()[0].id
    retried, sent = await queue.handle(operator_actions.retry_job, commands.RetryJob(job_id))
    (again,) = of(SlicePart, sent)
    assert again.slice_key == request.slice_key and retried.status == "slicing" and retried.error is None
    await queue.completed(again)
    assert queue.jobs()[0].status == "queued"


async def test_a_parameter_change_re_slices_only_that_line_s_jobs() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.order({"l1": {"label": "Ada"}, "l2": {"label": "Bob"}})
    first = queue.requests()
    assert len(first) == 2 and len({r.slice_key for r in first}) == 2
    for request in first:
        await queue.completed(request, sha=request.slice_key)
    assert {j.status for j in queue.jobs()} == {"queued"}
    kept = queue.jobs("l1")[0]

    sent = await queue.order({"l1": {"label": "Ada"}, "l2": {"label": "Cy"}})
    (new,) = of(SlicePart, sent)
    assert new.parameters == {"label": "Cy"}
    assert queue.jobs("l1")[0].revision == kept.revision and queue.jobs("l1")[0].status == "queued"
    changed = queue.jobs("l2")[0]
    assert (changed.status, changed.parameters, changed.sliced_file) == ("slicing", {"label": "Cy"}, None)
    # Back to the old values: that slice exists, so the job is queued again without asking.
    sent = await queue.order({"l1": {"label": "Ada"}, "l2": {"label": "Bob"}})
    assert of(SlicePart, sent) == [] and queue.jobs("l2")[0].status == "queued"


async def test_a_mesh_is_sliced_once_for_every_line_and_a_new_model_asks_for_its_slices() -> None:
    queue = Queue()
    await queue.order({"l1": {"label": "Ada"}, "l2": {"label": "Bob"}}, file=STL)
    assert queue.requests() == [] and {j.status for j in queue.jobs()} == {"slicing"}, "no printer fits yet"
    await queue.printer("x1", "X1C")
    (x1c,) = queue.requests()
    assert x1c.parameters == {}
    await queue.printer("x2", "X1C")
    await queue.printer("x1", "X1C", bed_clear=False)
    assert len(queue.requests()) == 1, "another printer of a known model asks nothing"
    await queue.completed(x1c)
    assert {j.status for j in queue.jobs()} == {"queued"}
    await queue.printer("p1", "P1S", fabmatic=True)
    p1s = queue.requests()[-1]
    assert (len(queue.requests()), p1s.printer_model, p1s.fabmatic) == (2, "P1S", True)


async def test_an_answer_nobody_waits_for_is_harmless_and_presliced_parts_are_not_sliced() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    stray = SlicePart(slice_key="0" * 64, source=STL, printer_model="X1C", material=MaterialMessage(type="PLA"),
                      requested_at=T0)
    assert await queue.completed(stray) == [] and await queue.failed(stray) == []
    sent = await queue.order({"l1": {}}, file=SLICED, grams=12.5)
    assert of(SlicePart, sent) == [] and queue.jobs()[0].status == "queued"
    (changed,) = of(JobChanged, sent)
    assert changed.file is not None and (changed.file.kind, changed.file.grams) == ("gcode.3mf", 12.5)
    (start,) = of(StartPrint, await queue.match())
    assert start.file == SLICED


async def test_a_cancelled_order_cancels_its_slicing_jobs_and_late_answers_change_nothing() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.order({"l1": {"label": "Ada"}})
    (request,) = queue.requests()
    await queue.order({})
    assert queue.jobs()[0].status == "cancelled"
    assert of(JobChanged, await queue.completed(request)) == []
    assert queue.jobs()[0].status == "cancelled"


ANSWERS = st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["completed", "failed"]), st.booleans()),
                   max_size=30)


@settings(max_examples=60, deadline=None)
@given(
    models=st.lists(st.sampled_from(["X1C", "A1", "P1S"]), min_size=0, max_size=3),
    late_model=st.sampled_from(["X1C", "A1", "P1P", None]),
    labels=st.lists(st.sampled_from(["Ada", "Bob", "Cy"]), min_size=1, max_size=3),
    answers=ANSWERS,
    data=st.data(),
)
def test_answers_in_any_order_and_twice_leave_every_job_where_its_slices_say(
    models: list[str], late_model: str | None, labels: list[str], answers: list[tuple[int, str, bool]],
    data: st.DataObject,
) -> None:
    queue = Queue()

    async def scenario() -> None:
        for index, model in enumerate(models):
            await queue.printer(f"p{index}", model)
        await queue.order({f"l{i}": {"label": label} for i, label in enumerate(labels)})
        await queue.order({f"m{i}": {"label": label} for i, label in enumerate(labels)}, file=STL, order_id="o2")
        if late_model is not None:
            await queue.printer("late", late_model)
        for pick, kind, twice in answers:
            requests = queue.requests()
            if not requests:
                break
            request = requests[pick % len(requests)]
            for _ in range(2 if twice else 1):
                if kind == "completed":
                    await queue.completed(request, sha=request.slice_key)
                else:
                    await queue.failed(request, f"failed: {request.slice_key}")
            if data.draw(st.booleans(), label="match"):
                await queue.match()
        await queue.match()

    asyncio.run(scenario())

    keys = [r.slice_key for r in queue.requests()]
    assert len(keys) == len(set(keys)), "a slice key was requested twice"
    printers = list(queue.store.printers_by_id.values())
    slices_by_basis: dict[str, dict[Target, Slice]] = {}
    for found in queue.store.slices.values():
        slices_by_basis.setdefault(found.basis, {})[found.target] = found
    for waiting in queue.store.jobs.values():
        assert waiting.slice_basis is not None
        targets = slicing.fitting_targets(waiting.assignment, printers)
        slices = slices_by_basis.get(waiting.slice_basis, {})
        assert set(targets) <= set(slices), "a fitting model has no slice requested"
        completed = [slices[t] for t in targets if slices[t].state == "completed"]
        if waiting.status == "slicing":
            assert not completed, "a job waits in slicing though a slice for its model exists"
            assert not targets or any(slices[t].state == "requested" for t in targets), "all failed, not failed"
        if waiting.status == "failed":
            assert waiting.error is not None and waiting.error.startswith("failed: ")
        if waiting.status in ("queued", "assigned"):
            assert waiting.sliced_file is not None and waiting.sliced_file["file"] is not None
    for start in of(StartPrint, queue.sent):
        printer_now = queue.store.printers_by_id[start.printer_id]
        made = next(s for s in queue.store.slices.values() if s.file and s.file["sha256"] == start.file.sha256)
        assert made.target == (printer_now.model, printer_now.fabmatic) and made.state == "completed"


async def test_jobs_queued_before_the_queue_sliced_are_adopted_once() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.order({"l1": {"label": "Ada"}}, file=SLICED)
    old = queue.jobs()[0]
    old.file, old.slice_basis = STL.model_dump(mode="json"), None
    queue.store.jobs[old.id] = old
    adopted, sent = await queue.handle(handlers.adopt_unsliced_jobs, commands.AdoptUnslicedJobs())
    (request,) = of(SlicePart, sent)
    assert adopted == 1 and request.source == STL and queue.jobs()[0].status == "slicing"
    assert (await queue.handle(handlers.adopt_unsliced_jobs, commands.AdoptUnslicedJobs()))[0] == 0
    assert await queue.match() == []


# ---- slice requests left unanswered


def test_an_unanswered_slice_is_asked_again_then_given_up() -> None:
    asked = a_slice(("X1C", False), "requested")
    assert slicing.chase(asked, T0 + timedelta(seconds=59), 60, 3) is None, "not overdue yet"
    later = T0 + timedelta(seconds=60)
    assert slicing.chase(asked, later, 60, 3) == "again"
    assert (asked.state, asked.requests, asked.requested_at) == ("requested", 2, later)
    assert slicing.chase(asked, later + timedelta(seconds=30), 60, 3) is None, "the clock restarts at each request"
    assert slicing.chase(asked, later + timedelta(seconds=60), 60, 3) == "again"
    given_up = later + timedelta(seconds=120)
    assert slicing.chase(asked, given_up, 60, 3) == "given_up"
    assert (asked.state, asked.stage, asked.answered_at) == ("failed", "timeout", given_up)
    assert asked.error == "the slicer did not answer 3 requests for this file (60 s each)"
    for answered in ("completed", "failed"):
        assert slicing.chase(a_slice(("X1C", False), answered), given_up, 60, 3) is None


async def test_a_lost_slice_request_is_asked_again_and_its_jobs_fail_when_it_never_comes() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.order({"l1": {"label": "Ada"}})
    (first,) = queue.requests()

    async def chase(after_seconds: float) -> list[Any]:
        queue.now += timedelta(seconds=after_seconds)
        return (await queue.do(lambda uow: chase_unanswered_slices(ChaseUnansweredSlices(), uow, queue.deps)))[1]

    assert of(SlicePart, await chase(queue.deps.slice_answer_seconds - 1)) == []
    (again,) = of(SlicePart, await chase(1))
    assert (again.slice_key, again.parameters) == (first.slice_key, first.parameters)
    assert queue.jobs()[0].status == "slicing"
    assert len(of(SlicePart, await chase(queue.deps.slice_answer_seconds))) == 1
    sent = await chase(queue.deps.slice_answer_seconds)
    assert of(SlicePart, sent) == [], "asked three times in all"
    job_now = queue.jobs()[0]
    assert job_now.status == "failed" and "did not answer 3 requests" in (job_now.error or "")
    assert of(JobChanged, sent)[0].status == "failed"
    assert of(SlicePart, await chase(10 * queue.deps.slice_answer_seconds)) == [], "a given-up slice stays given up"


async def test_only_slices_a_slicing_job_waits_for_are_chased_and_a_late_answer_still_counts() -> None:
    queue = Queue()
    await queue.printer("x1", "X1C")
    await queue.order({"l1": {"label": "Ada"}, "l2": {"label": "Bob"}})
    ada, bob = sorted(queue.requests(), key=lambda r: r.parameters["label"])
    await queue.completed(ada)
    await queue.order({"l2": {"label": "Bob"}}, order_id="o2")
    await queue.order({}, order_id="o1")
    assert {j.status for j in queue.jobs() if j.order_id == "o1"} == {"cancelled"}
    queue.now += timedelta(seconds=queue.deps.slice_answer_seconds)
    _, sent = await queue.do(lambda uow: chase_unanswered_slices(ChaseUnansweredSlices(), uow, queue.deps))
    assert [r.slice_key for r in of(SlicePart, sent)] == [bob.slice_key], "Ada's is answered, o2 still waits for Bob"
    await queue.completed(bob)
    assert [j.status for j in queue.jobs() if j.order_id == "o2"] == ["queued"]


async def test_the_models_whose_printers_hold_the_material_are_sliced_first() -> None:
    queue = Queue()
    await queue.printer("a1", "A1", materials=[LoadedMaterialMessage(slot=0, type="TPU")])
    await queue.printer("p1p", "P1P", materials=[LoadedMaterialMessage(slot=0, type="ABS")])
    await queue.printer("x1", "X1C", state="printing")
    await queue.printer("off", "H2D", online=False)
    await queue.order({"l1": {"label": "Ada"}, "l2": {"label": "Grace"}})
    asked = [(r.parameters["label"], r.printer_model) for r in queue.requests()]
    assert asked == [("Ada", "X1C"), ("Grace", "X1C"),
                     ("Ada", "A1"), ("Ada", "H2D"), ("Ada", "P1P"), ("Grace", "A1"), ("Grace", "H2D"), ("Grace", "P1P")]


def test_holding_targets_are_online_printers_of_the_assignment_with_the_material() -> None:
    fleet = [printer("x1", "X1C", tags=("shop",)), printer("p1", "P1S", fabmatic=True, material="pla "),
             printer("a1", "A1", material="TPU"), printer("h2", "H2D")]
    fleet[3].online = False
    assert slicing.holding_targets(Assignment(), Material("PLA"), fleet) == {("X1C", False), ("P1S", True)}
    shop = Assignment(mode="tags", tags=("shop",))
    assert slicing.holding_targets(shop, Material("pla"), fleet) == {("X1C", False)}
