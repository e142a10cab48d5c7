"""Handlers over the in-memory unit of work: the messages the queue emits for each use case."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from opentelemetry.sdk.trace import TracerProvider
from queue_fakes import InMemoryQueueRepository, InMemoryUnitOfWork

from contracts.orders.v1 import DesiredLineItem, DesiredPart, OrderPrintRequested
from contracts.printers.v1 import LoadedMaterial, PrinterChanged, PrintUpdated
from contracts.queue.v1 import JobChanged, OrderJobsSummarized, StartPrint, StopPrint
from contracts.shared_values import Assignment, FileRef, Material
from printqueue.domain import commands
from printqueue.domain.commands import RunMatchingPass
from printqueue.domain.errors import TransitionForbidden
from printqueue.domain.lifecycle import DispatchPolicy
from printqueue.domain.model import FarmSettings, Job
from printqueue.service_layer import handlers, matching_pass, messages, operator_actions
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.matching_pass import run_matching_pass

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FILE = FileRef(sha256="a" * 64, filename="box.gcode.3mf", kind="gcode.3mf", size_bytes=100)
R = TypeVar("R")
C = TypeVar("C")


class Queue:
    def __init__(self) -> None:
        self.store = InMemoryQueueRepository()
        self.now = T0
        self.ids = (f"id-{n:05d}" for n in itertools.count())
        self.deps = Deps(
            clock=lambda: self.now,
            ids=lambda: next(self.ids),
            policy=DispatchPolicy(deadline_seconds=60, max_dispatch_attempts=2, deadline_grace_seconds=5),
        )
        self.sent: list[Any] = []
        self.printer_revisions: dict[str, int] = {}
        self.sequences: dict[str, int] = {}

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

    async def order(self, quantity: int = 1, material: str = "PLA", assignment: Assignment | None = None,
                    revision: int = 1, order_id: str = "o1") -> list[Any]:
        message = OrderPrintRequested(
            order_id=order_id, order_number="1001", print_revision=revision, assignment=assignment or Assignment(),
            order_created_at=T0,
            line_items=[
                DesiredLineItem(
                    line_item_id="l1", position=0, sku_id="s1", sku="BOX", quantity=quantity,
                    parts=[DesiredPart(part_id="p1", part_name="box", quantity=1,
                                       material=Material(type=material, color="#FF0000"), file=FILE, grams=12.5)],
                )
            ],
        )
        return (await self.handle(handlers.reconcile_order, messages.reconcile_order(message)))[1]

    async def printer(self, printer_id: str = "pr1", **state: Any) -> list[Any]:
        revision = self.printer_revisions[printer_id] = self.printer_revisions.get(printer_id, 0) + 1
        fields: dict[str, Any] = {
            "name": printer_id.upper(), "model": "X1C", "online": True, "state": "idle", "bed_clear": True,
            "materials": [LoadedMaterial(slot=254, type="pla", color="FF0000FF")], "idle_since": T0,
            "updated_at": self.now, **state,
        }
        message = PrinterChanged(id=printer_id, revision=revision, **fields)
        return (await self.handle(handlers.record_printer, messages.record_printer(message)))[1]

    async def match(self) -> list[Any]:
        return (await self.do(lambda uow: run_matching_pass(RunMatchingPass(), uow, self.deps)))[1]

    async def report(self, job: Job, status: str, **extra: Any) -> list[Any]:
        sequence = self.sequences[job.id] = self.sequences.get(job.id, 0) + 1
        message = PrintUpdated(
            job_id=job.id, printer_id=extra.pop("printer_id", job.printer_id), command_id=job.command_id,
            status=status, sequence=extra.pop("sequence", sequence), occurred_at=self.now, **extra,
        )
        return (await self.handle(handlers.apply_print_report, messages.apply_print_report(message)))[1]

    def jobs(self) -> list[Job]:
        return sorted(self.store.jobs.values(), key=lambda j: j.id)

    def job(self) -> Job:
        (job,) = [j for j in self.store.jobs.values() if j.live]
        return job


def of(kind: type[R], messages: list[Any]) -> list[R]:
    return [m for m in messages if isinstance(m, kind)]


async def test_a_print_request_emits_each_job_and_one_summary_for_the_order() -> None:
    queue = Queue()
    sent = await queue.order(quantity=3)
    assert len(of(JobChanged, sent)) == 3
    (summary,) = of(OrderJobsSummarized, sent)
    assert (summary.sequence, summary.print_revision, summary.added, summary.totals.queued) == (1, 1, 3, 3)
    assert summary.line_items["l1"].queued == 3
    assert await queue.order(quantity=3) == []
    again = await queue.order(quantity=3, revision=2)
    (summary,) = of(OrderJobsSummarized, again)
    assert (summary.sequence, summary.added, summary.kept, of(JobChanged, again)) == (2, 0, 3, [])


async def test_dispatch_waits_for_the_printer_to_start_then_follows_its_reports() -> None:
    queue = Queue()
    await queue.order()
    await queue.printer()
    (start,) = of(StartPrint, await queue.match())
    job = queue.job()
    assert (job.status, job.printer_id, start.job_id, start.file) == ("assigned", "pr1", job.id, FILE)
    assert await queue.match() == []

    sent = await queue.report(job, "started", progress_percent=1)
    assert queue.job().status == "printing" and of(OrderJobsSummarized, sent)[0].totals.printing == 1
    await queue.printer(online=False, state="offline")
    assert queue.job().status == "printing"
    await queue.report(queue.job(), "paused", error="HMS_0700_2000_0002_0001")
    assert (queue.job().status, queue.job().error) == ("paused", "HMS_0700_2000_0002_0001")
    await queue.report(queue.job(), "printing", progress_percent=60)
    assert (queue.job().status, queue.job().progress_percent) == ("printing", 60)
    sent = await queue.report(queue.job(), "completed")
    assert queue.job().status == "completed" and of(OrderJobsSummarized, sent)[0].totals.completed == 1
    assert await queue.report(queue.job(), "printing", sequence=2) == []
    assert queue.job().status == "completed"


async def test_stale_and_duplicate_reports_change_nothing() -> None:
    queue = Queue()
    await queue.order()
    await queue.printer()
    await queue.match()
    job = queue.job()
    await queue.report(job, "started", sequence=5)
    assert await queue.report(queue.job(), "completed", sequence=4) == []
    assert await queue.report(queue.job(), "started", sequence=5) == []
    assert queue.job().status == "printing"


async def test_a_printer_that_never_starts_is_flagged_and_the_job_fails_after_bounded_attempts() -> None:
    queue = Queue()
    await queue.order()
    await queue.printer("pr1", idle_since=T0 - timedelta(hours=1))
    await queue.printer("pr2")
    (first,) = of(StartPrint, await queue.match())
    assert first.printer_id == "pr1"
    queue.now += timedelta(seconds=66)
    sent = await queue.match()
    (stop,) = of(StopPrint, sent)
    (second,) = of(StartPrint, sent)
    assert (stop.printer_id, second.printer_id, second.attempt) == ("pr1", "pr2", 2)
    assert queue.store.printers_by_id["pr1"].avoid_until is not None
    sent = await queue.report(queue.job(), "not_started", error="upload failed")
    job = queue.job()
    assert job.status == "failed" and "upload failed" in (job.error or "")
    assert of(OrderJobsSummarized, sent)[0].totals.failed == 1


async def test_a_gateway_refusal_sends_the_job_elsewhere_at_once() -> None:
    queue = Queue()
    await queue.order()
    await queue.printer("pr1", idle_since=T0 - timedelta(hours=1))
    await queue.printer("pr2")
    (first,) = of(StartPrint, await queue.match())
    assert first.printer_id == "pr1" and first.deadline_seconds == 60
    sent = await queue.report(queue.job(), "not_started", sequence=0, error="unknown printer")
    assert queue.store.jobs[first.job_id].status == "queued" and of(StopPrint, sent) == []
    (second,) = of(StartPrint, await queue.match())
    assert (second.printer_id, second.attempt) == ("pr2", 2)
    assert queue.store.printers_by_id["pr1"].avoid_until is not None
    stale = PrintUpdated(job_id=first.job_id, printer_id="pr1", command_id=first.command_id, status="not_started",
                         sequence=0, error="unknown printer", occurred_at=queue.now)
    assert (await queue.handle(handlers.apply_print_report, messages.apply_print_report(stale)))[1] == []
    assert (queue.job().status, queue.job().printer_id) == ("assigned", "pr2")
    sent = await queue.report(queue.job(), "not_started", sequence=0, error="printer is offline")
    job = queue.job()
    assert (job.status, job.printer_id) == ("failed", "pr2")
    assert job.error == "not started after 2 dispatch attempts: printer is offline"
    assert of(OrderJobsSummarized, sent)[0].totals.failed == 1


async def test_a_failed_refusal_fails_the_job_and_frees_the_printer() -> None:
    queue = Queue()
    await queue.order(quantity=2)
    await queue.printer()
    (first,) = of(StartPrint, await queue.match())
    reason = "a X1C printer cannot print a .stl file as it is: it needs a sliced .gcode.3mf"
    sent = await queue.report(queue.store.jobs[first.job_id], "failed", sequence=0, error=reason)
    failed = queue.store.jobs[first.job_id]
    assert (failed.status, failed.error) == ("failed", reason)
    assert of(OrderJobsSummarized, sent)[0].totals.failed == 1
    (second,) = of(StartPrint, await queue.match())
    assert second.printer_id == "pr1" and second.job_id != first.job_id


async def test_a_refusal_after_the_printer_started_the_job_changes_nothing() -> None:
    queue = Queue()
    await queue.order()
    await queue.printer()
    await queue.match()
    await queue.report(queue.job(), "started")
    for status in ("not_started", "failed"):
        assert await queue.report(queue.job(), status, sequence=0, error="printer is printing") == []
    assert (queue.job().status, queue.job().printer_id) == ("printing", "pr1")


async def test_a_late_start_on_a_printer_the_job_left_is_stopped() -> None:
    queue = Queue()
    await queue.order()
    await queue.printer()
    await queue.match()
    job = queue.job()
    await queue.report(job, "not_started")
    assert (queue.job().status, queue.job().printer_id) == ("queued", None)
    (stop,) = of(StopPrint, await queue.report(job, "started", printer_id="pr1"))
    assert stop.printer_id == "pr1" and queue.job().status == "queued"


async def test_new_tags_and_materials_take_effect_for_waiting_jobs_at_once() -> None:
    queue = Queue()
    await queue.order(material="PETG", assignment=Assignment(mode="tags", tags=["big"]))
    await queue.printer()
    assert await queue.match() == []
    await queue.printer(materials=[LoadedMaterial(slot=0, type="PETG", color="FF000080")])
    assert await queue.match() == []
    await queue.printer(materials=[LoadedMaterial(slot=0, type="PETG", color="FF000080")], tags=["BIG"])
    assert len(of(StartPrint, await queue.match())) == 1


async def test_older_printer_revisions_are_ignored() -> None:
    queue = Queue()
    await queue.printer(bed_clear=False)
    stale = PrinterChanged(id="pr1", name="PR1", model="X1C", online=True, state="idle", bed_clear=True,
                           revision=1, updated_at=T0)
    changed, _ = await queue.handle(handlers.record_printer, messages.record_printer(stale))
    assert not changed and not queue.store.printers_by_id["pr1"].bed_clear


async def test_a_finished_printer_waits_for_its_bed_to_be_cleared() -> None:
    queue = Queue()
    await queue.order(quantity=2)
    await queue.printer()
    await queue.match()
    (first,) = [j for j in queue.jobs() if j.status == "assigned"]
    await queue.report(first, "started")
    await queue.report(first, "completed")
    await queue.printer(state="finished", bed_clear=False, current_job_id=first.id)
    assert await queue.match() == []
    await queue.printer(state="finished", bed_clear=True, current_job_id=first.id)
    assert len(of(StartPrint, await queue.match())) == 1


async def test_operator_cancel_retry_reject_and_priority() -> None:
    queue = Queue()
    await queue.order()
    await queue.printer()
    await queue.match()
    job = queue.job()
    await queue.report(job, "started")

    _, sent = await queue.handle(operator_actions.cancel_job, commands.CancelJob(job.id))
    (stop,) = of(StopPrint, sent)
    assert stop.printer_id == "pr1" and queue.job().status == "printing" and queue.job().cancel_requested
    await queue.report(queue.job(), "cancelled")
    stopped = queue.store.jobs[job.id]
    assert (stopped.status, stopped.error) == ("cancelled", "cancelled by an operator")
    with pytest.raises(TransitionForbidden):
        await queue.handle(operator_actions.cancel_job, commands.CancelJob(job.id))

    await queue.handle(operator_actions.retry_job, commands.RetryJob(job.id))
    retried = queue.store.jobs[job.id]
    assert (retried.status, retried.attempt, retried.printer_id) == ("queued", 2, None)
    await queue.handle(operator_actions.set_job_priority, commands.SetJobPriority(job.id, "low"))
    assert queue.store.jobs[job.id].priority == "low"

    await queue.match()
    await queue.report(queue.job(), "started")
    await queue.report(queue.job(), "completed")
    with pytest.raises(TransitionForbidden):
        await queue.handle(operator_actions.set_job_priority, commands.SetJobPriority(job.id, "normal"))
    await queue.handle(operator_actions.reject_job, commands.RejectJob(job.id))
    assert (queue.job().status, queue.job().error) == ("failed", "rejected by an operator")
    await queue.handle(operator_actions.set_job_priority, commands.SetJobPriority(job.id, "normal"))
    assert queue.job().priority == "normal"


async def test_retry_never_makes_a_second_live_job_for_one_identity() -> None:
    queue = Queue()
    await queue.order(quantity=1)
    await queue.order(quantity=0, revision=2)
    (cancelled,) = queue.jobs()
    await queue.order(quantity=1, revision=3)
    assert len(queue.jobs()) == 2
    with pytest.raises(TransitionForbidden):
        await queue.handle(operator_actions.retry_job, commands.RetryJob(cancelled.id))


@pytest.mark.parametrize("overlap_from", [1, 200])
async def test_a_dispatch_continues_the_trace_of_the_print_request_not_the_matching_pass(
    monkeypatch: pytest.MonkeyPatch, overlap_from: int
) -> None:
    """One print-jobs click is one trace: the StartPrint and JobChanged a later matching pass sends carry the
    trace the reconciliation of their job's order ran in, whatever span the pass itself runs in, also when one
    pass dispatches jobs of orders clicked in different traces, and when it builds them while its UPDATE runs."""
    monkeypatch.setattr(matching_pass, "_OVERLAP_FROM", overlap_from)
    tracer = TracerProvider().get_tracer("test")
    queue = Queue()
    clicks: dict[str, int] = {}
    for order_id in ("o1", "o2"):
        with tracer.start_as_current_span("process orders.v1.order.print_requested") as request:
            await queue.order(quantity=2, order_id=order_id)
            clicks[order_id] = request.get_span_context().trace_id
    for printer_id in ("pr1", "pr2", "pr3", "pr4"):
        await queue.printer(printer_id)
    uow = InMemoryUnitOfWork(queue.store)
    with tracer.start_as_current_span("matching pass") as matching:
        await run_matching_pass(RunMatchingPass(), uow, queue.deps)
    assert sorted(e.type for e in uow.published) == sorted([JobChanged.SUBJECT, StartPrint.SUBJECT] * 4)
    for envelope in uow.published:
        assert envelope.subject is not None and envelope.traceparent is not None
        order_id = queue.store.jobs[envelope.subject].order_id
        assert envelope.traceparent.split("-")[1] == f"{clicks[order_id]:032x}", (envelope.type, order_id)
    assert matching.get_span_context().trace_id not in clicks.values()


async def test_a_pass_building_its_messages_while_its_update_runs_emits_what_it_emits_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big pass builds its dispatches' messages while their UPDATE runs, handing the event loop back as it goes:
    the same messages in the same order (each trace's starts, then its job changes) as one built after it."""
    emitted = []
    for overlap_from in (1, 10**6):
        monkeypatch.setattr(matching_pass, "_OVERLAP_FROM", overlap_from)
        queue = Queue()
        for order_id in ("o1", "o2"):
            await queue.order(quantity=3, order_id=order_id)
        for printer_id in ("pr1", "pr2", "pr3", "pr4", "pr5"):
            await queue.printer(printer_id)
        sent = await queue.match()
        emitted.append([(type(m).__name__, m.model_dump(mode="json")) for m in sent])
        assert len(of(StartPrint, sent)) == len(of(JobChanged, sent)) == 5
    assert emitted[0] == emitted[1]


async def test_the_farms_colour_tolerance_lets_a_close_red_spool_take_a_red_job() -> None:
    queue = Queue()
    await queue.order(quantity=1)
    await queue.printer(materials=[LoadedMaterial(slot=0, type="PLA", color="F01010FF")])
    assert of(StartPrint, await queue.match()) == []

    uow = InMemoryUnitOfWork(queue.store)
    wider = commands.SetFarmSettings(FarmSettings(color_tolerance=5))
    await operator_actions.set_farm_settings(wider, uow, queue.deps)
    assert (uow.commits, uow.wakes) == (1, 1), "a wider tolerance wakes the matcher"
    assert queue.store.settings == FarmSettings(color_tolerance=5)

    (start,) = of(StartPrint, await queue.match())
    assert start.printer_id == "pr1"
    await operator_actions.set_farm_settings(wider, uow, queue.deps)
    assert (uow.commits, uow.wakes) == (2, 1), "the same settings again change nothing"


def ready_printer(printer_id: str = "pr1", revision: int = 1, **state: Any) -> commands.RecordPrinter:
    fields: dict[str, Any] = {
        "name": printer_id.upper(), "model": "X1C", "online": True, "state": "idle", "bed_clear": True,
        "materials": [LoadedMaterial(slot=254, type="pla", color="FF0000FF")], "idle_since": T0,
        "updated_at": T0, **state,
    }
    return messages.record_printer(PrinterChanged(id=printer_id, revision=revision, **fields))


async def test_a_printer_turning_ready_gets_its_job_in_the_transaction_that_recorded_it() -> None:
    queue = Queue()
    await queue.order(quantity=2)
    uow = InMemoryUnitOfWork(queue.store)
    done = await handlers.record_printer_and_dispatch(ready_printer(), uow, queue.deps)

    assert done is not None and [d.printer_id for d in done.dispatched] == ["pr1"]
    (start,) = of(StartPrint, uow.messages)
    assert start.printer_id == "pr1" and start.job_id == done.dispatched[0].job_id
    assert (uow.commits, uow.wakes, uow.forecast_wakes) == (1, 0, 1), "one commit; the forecast alone is woken"
    assert of(StartPrint, await queue.match()) == [], "the loop's pass has nothing left for it"


async def test_a_printer_turning_ready_while_a_pass_holds_the_lock_wakes_the_loop_instead() -> None:
    queue = Queue()
    await queue.order(quantity=1)
    queue.store.matching_lock_busy = True
    uow = InMemoryUnitOfWork(queue.store)

    assert await handlers.record_printer_and_dispatch(ready_printer(), uow, queue.deps) is None
    assert of(StartPrint, uow.messages) == [] and (uow.wakes, uow.forecast_wakes) == (1, 0)
    queue.store.matching_lock_busy = False
    (start,) = of(StartPrint, await queue.match())
    assert start.printer_id == "pr1"


async def test_a_printer_that_is_not_ready_runs_no_pass_of_its_own() -> None:
    queue = Queue()
    await queue.order(quantity=1)
    uow = InMemoryUnitOfWork(queue.store)

    assert await handlers.record_printer_and_dispatch(ready_printer(bed_clear=False), uow, queue.deps) is None
    assert of(StartPrint, uow.messages) == [] and uow.wakes == 1, "a matching change still wakes the loop"
    progress = InMemoryUnitOfWork(queue.store)
    stale = ready_printer(bed_clear=False)
    assert await handlers.record_printer_and_dispatch(stale, progress, queue.deps) is None
    assert (progress.wakes, progress.forecast_wakes) == (0, 0), "an ignored revision wakes nothing"
