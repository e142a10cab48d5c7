"""The real app from `create_app`, over the in-memory unit of work with a fixed clock and counted ids: a write
route reaches its handler, which commits, and the injected clock and ids are the ones it used."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from queue_fakes import InMemoryQueueRepository, InMemoryUnitOfWork

from contracts.orders.v1 import DesiredLineItem, DesiredPart, OrderPrintRequested
from contracts.printers.v1 import LoadedMaterial, PrinterChanged
from contracts.queue.v1 import StopPrint
from contracts.shared_values import Assignment, FileRef, Material
from printqueue.bootstrap import create_app
from printqueue.config import Settings
from printqueue.domain.commands import RunMatchingPass
from printqueue.service_layer import handlers, messages
from printqueue.service_layer.handlers import Deps
from printqueue.service_layer.matching_pass import run_matching_pass

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
FILE = FileRef(sha256="a" * 64, filename="box.gcode.3mf", kind="gcode.3mf", size_bytes=100)


async def assigned_job(store: InMemoryQueueRepository) -> str:
    """One job of one order given to one printer (StartPrint sent, not yet started)."""
    setup = Deps(clock=lambda: T0, ids=(f"setup-{n}" for n in itertools.count()).__next__)
    order = OrderPrintRequested(
        order_id="o1", order_number="1001", print_revision=1, assignment=Assignment(), order_created_at=T0,
        line_items=[DesiredLineItem(
            line_item_id="l1", position=0, sku_id="s1", sku="BOX", quantity=1,
            parts=[DesiredPart(part_id="p1", part_name="box", quantity=1, material=Material(type="PLA"), file=FILE)],
        )],
    )
    printer = PrinterChanged(
        id="pr1", name="PR1", revision=1, model="X1C", online=True, state="idle", bed_clear=True,
        materials=[LoadedMaterial(slot=0, type="PLA")], idle_since=T0, updated_at=T0,
    )
    await handlers.reconcile_order(messages.reconcile_order(order), InMemoryUnitOfWork(store), setup)
    await handlers.record_printer(messages.record_printer(printer), InMemoryUnitOfWork(store), setup)
    (dispatch,) = await run_matching_pass(RunMatchingPass(), InMemoryUnitOfWork(store), setup)
    return dispatch.job_id


async def test_a_cancel_through_the_real_app_commits_with_the_injected_clock_and_ids() -> None:
    store = InMemoryQueueRepository()
    job_id = await assigned_job(store)
    made: list[InMemoryUnitOfWork] = []

    def uow_factory() -> InMemoryUnitOfWork:
        made.append(InMemoryUnitOfWork(store))
        return made[-1]

    app = create_app(
        Settings(), uow_factory=uow_factory, clock=lambda: LATER, ids=(f"app-{n}" for n in itertools.count()).__next__
    )
    client = TestClient(app)

    answer = client.post(f"/api/v1/jobs/{job_id}/cancel")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["id"], body["status"]) == (job_id, "cancelled")
    assert body["finished_at"] == body["updated_at"] == "2026-01-02T09:30:00Z"
    (uow,) = made
    assert uow.commits == 1
    (stop,) = [m for m in uow.messages if isinstance(m, StopPrint)]
    assert (stop.command_id, stop.printer_id, stop.issued_at) == ("app-0", "pr1", LATER)
    assert store.jobs[job_id].status == "cancelled"
