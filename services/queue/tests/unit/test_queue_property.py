"""Property: whatever the order edits, print-jobs clicks, cancellations and printer progress, and however
the messages are duplicated, delayed or reordered, the final jobs are the latest desired set plus what
was already printing or done, and no identity ever has two live jobs. Runs the real handlers over the
in-memory repository (which enforces the same unique indexes as PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from queue_fakes import InMemoryQueueRepository, InMemoryUnitOfWork

from contracts.orders.v1 import DesiredLineItem, DesiredPart, OrderCancelled, OrderPrintRequested
from contracts.printers.v1 import LoadedMaterial, PrinterChanged, PrintUpdated
from contracts.queue.v1 import JobChanged, OrderJobsSummarized, StartPrint
from contracts.shared_values import Assignment, FileRef, Material
from printqueue.domain.commands import RunMatchingPass
from printqueue.domain.lifecycle import DispatchPolicy
from printqueue.domain.model import ACTIVE, Job, summarize
from printqueue.service_layer import handlers, messages
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.matching_pass import run_matching_pass

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORDER = "order-1"
FILE = FileRef(sha256="0" * 64, filename="a.gcode.3mf", kind="gcode.3mf", size_bytes=10)
PARTS = {
    "li0": [("partA", 1, "PLA")],
    "li1": [("partB", 2, "PETG")],
    "li2": [("partA", 1, "PLA"), ("partC", 1, "PLA")],
}
STARTED = frozenset({"printing", "paused", "completed", "failed"})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def print_requested(revision: int, quantities: dict[str, int]) -> OrderPrintRequested:
    return OrderPrintRequested(
        order_id=ORDER,
        order_number="1001",
        print_revision=revision,
        assignment=Assignment(),
        order_created_at=T0,
        line_items=[
            DesiredLineItem(
                line_item_id=line,
                position=index,
                sku_id=f"sku-{line}",
                sku=line.upper(),
                quantity=quantity,
                parts=[
                    DesiredPart(
                        part_id=part, part_name=part, quantity=per_unit, material=Material(type=kind), file=FILE
                    )
                    for part, per_unit, kind in PARTS[line]
                ],
            )
            for index, (line, quantity) in enumerate(sorted(quantities.items()))
            if quantity > 0
        ],
    )


def wanted_identities(message: OrderPrintRequested) -> set[tuple[str, str, int]]:
    wanted: set[tuple[str, str, int]] = set()
    for line in message.line_items:
        for part in line.parts:
            copies = sum(p.quantity for p in line.parts if p.part_id == part.part_id) * line.quantity
            wanted.update((line.line_item_id, part.part_id, c) for c in range(1, copies + 1))
    return wanted


def assert_one_live_job_per_identity(jobs: list[Job]) -> None:
    live = [(j.order_id, *j.identity) for j in jobs if j.live]
    assert len(live) == len(set(live))
    active = [j.printer_id for j in jobs if j.status in ACTIVE]
    assert len(active) == len(set(active))


class World:
    def __init__(self) -> None:
        self.store = InMemoryQueueRepository()
        self.clock = Clock()
        self.ids = (f"id-{n:06d}" for n in itertools.count())
        policy = DispatchPolicy(max_dispatch_attempts=2)
        self.deps = Deps(clock=self.clock, ids=lambda: next(self.ids), policy=policy)
        self.published: list[Any] = []
        self.sequences: dict[str, int] = {}

    async def run(self, action: Any) -> None:
        uow = InMemoryUnitOfWork(self.store)
        await action(uow)
        self.published.extend(uow.messages)
        summarized = [m.order_id for m in uow.messages if isinstance(m, OrderJobsSummarized)]
        assert len(summarized) == len(set(summarized)), "more than one summary per order in one transaction"
        for message in uow.messages:
            if isinstance(message, OrderJobsSummarized):
                assert message.sequence > self.sequences.get(message.order_id, 0)
                self.sequences[message.order_id] = message.sequence
        assert_one_live_job_per_identity(list(self.store.jobs.values()))

    async def deliver(self, message: OrderPrintRequested | OrderCancelled) -> None:
        started_before = {j.id: (j.status, j.revision) for j in self.store.jobs.values() if j.status in STARTED}
        if isinstance(message, OrderPrintRequested):
            await self.run(lambda uow: handlers.reconcile_order(messages.reconcile_order(message), uow, self.deps))
        else:
            await self.run(lambda uow: handlers.cancel_order(messages.cancel_order(message), uow, self.deps))
        for job_id, state in started_before.items():
            job = self.store.jobs[job_id]
            assert (job.status, job.revision) == state, "reconciliation touched a started or finished job"

    async def add_printers(self) -> None:
        for index, kind in enumerate(["PLA", "PETG", "PLA"]):
            message = PrinterChanged(
                id=f"printer-{index}", name=f"P{index}", model="X1C", online=True, state="idle", bed_clear=True,
                materials=[LoadedMaterial(slot=0, type=kind, color="FFFFFFFF")], revision=1,
                idle_since=T0 - timedelta(minutes=index), updated_at=T0,
            )
            await self.run(lambda uow, m=message: handlers.record_printer(messages.record_printer(m), uow, self.deps))

    async def report(self, job: Job, status: str, sequence: int) -> None:
        assert job.printer_id is not None
        message = PrintUpdated(
            job_id=job.id, printer_id=job.printer_id, command_id=job.command_id, status=status,
            sequence=sequence, occurred_at=self.clock.now,
        )
        await self.run(lambda uow: handlers.apply_print_report(messages.apply_print_report(message), uow, self.deps))


quantities = st.fixed_dictionaries({line: st.integers(0, 3) for line in PARTS})
edits = st.lists(st.one_of(quantities, st.just("cancel")), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=edits, data=st.data())
def test_final_jobs_are_the_latest_desired_set_plus_what_started(edits: list[Any], data: st.DataObject) -> None:
    messages: list[OrderPrintRequested | OrderCancelled] = [
        OrderCancelled(order_id=ORDER, print_revision=revision)
        if edit == "cancel"
        else print_requested(revision, edit)
        for revision, edit in enumerate(edits, start=1)
    ]
    world = World()

    async def scenario() -> None:
        await world.add_printers()
        reports = itertools.count(1)
        for _ in range(data.draw(st.integers(0, 25), label="steps")):
            step = data.draw(st.sampled_from(["deliver", "deliver", "match", "report", "expire"]), label="step")
            if step == "expire":
                world.clock.now += timedelta(seconds=world.deps.policy.deadline_seconds + 60)
                step = "match"
            if step == "deliver":
                await world.deliver(data.draw(st.sampled_from(messages), label="message"))
            elif step == "match":
                await world.run(lambda uow: run_matching_pass(RunMatchingPass(), uow, world.deps))
            else:
                active = sorted((j for j in world.store.jobs.values() if j.status in ACTIVE), key=lambda j: j.id)
                if active:
                    job = data.draw(st.sampled_from(active), label="job")
                    status = data.draw(
                        st.sampled_from(["started", "paused", "completed", "failed", "cancelled", "not_started"]),
                        label="status",
                    )
                    await world.report(job, status, next(reports))
        # Delayed messages arrive in the end, in any order, some twice.
        for message in data.draw(st.permutations(messages), label="late"):
            await world.deliver(message)
            if data.draw(st.booleans(), label="duplicate"):
                await world.deliver(message)

    asyncio.run(scenario())

    jobs = list(world.store.jobs.values())
    latest = messages[-1]
    live = {j.identity: j for j in jobs if j.live}
    if isinstance(latest, OrderPrintRequested):
        wanted = wanted_identities(latest)
        for identity in wanted - set(live):
            # Only a printer can end a wanted job as cancelled (stopped at the printer); a new click re-adds it.
            history = [j for j in jobs if j.identity == identity]
            assert history, f"wanted identity {identity} never got a job"
            latest_job = max(history, key=lambda j: (j.created_at, j.id))
            assert latest_job.error == "cancelled on the printer", f"{identity} has no live job"
        extra = {i: j.status for i, j in live.items() if i not in wanted}
    else:
        extra = {i: j.status for i, j in live.items()}
    assert set(extra.values()) <= STARTED, f"unwanted jobs that never started survived: {extra}"
    assert world.store.orders[ORDER].applied_revision == len(messages)

    summaries = [m for m in world.published if isinstance(m, OrderJobsSummarized)]
    expected = summarize(jobs)
    assert summaries[-1].totals.model_dump() == vars(expected.totals)
    changes: dict[str, int] = {}
    for message in world.published:
        if isinstance(message, JobChanged):
            assert message.revision > changes.get(message.id, 0), "JobChanged revisions go backwards"
            changes[message.id] = message.revision
    assert {j.id: j.revision for j in jobs} == changes
    starts = [m for m in world.published if isinstance(m, StartPrint)]
    assert len({m.command_id for m in starts}) == len(starts)
