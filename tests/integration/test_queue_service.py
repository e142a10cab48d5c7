"""The queue service alone against real PostgreSQL and NATS JetStream: messages in, jobs, commands and the
HTTP API out. The test plays the orders service and a printer gateway by publishing their contract
messages, so it needs no other service. Two replicas run at once in the dispatch test."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from contracts.envelope import ContractMessage, Envelope
from contracts.orders.v1 import DesiredLineItem, DesiredPart, OrderCancelled, OrderPrintRequested
from contracts.printers.v1 import LoadedMaterial, PrinterChanged, PrintUpdated
from contracts.queue.v1 import JobChanged, OrderJobsSummarized, StartPrint, StopPrint
from contracts.shared_values import Assignment, FileRef, Material
from devstack import Stack, StackConfig, wait_until

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 4.0
FILE = FileRef(sha256="b" * 64, filename="part.gcode.3mf", kind="gcode.3mf", size_bytes=2048)


@pytest.fixture(scope="module")
async def queue_stack() -> AsyncIterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-queue-it-"))
    config = StackConfig.for_tests(
        folder,
        os.environ,
        services=("queue",),
        start_simulator=False,
        extra_env={
            "DISPATCH_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
            "DISPATCH_GRACE_SECONDS": "0.5",
            "MAX_DISPATCH_ATTEMPTS": "2",
            "PRINTER_COOLDOWN_SECONDS": "120",
            "MATCH_INTERVAL_SECONDS": "0.3",
        },
    )
    try:
        async with Stack(config) as running:
            yield running
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


class Wire:
    """Publishes other services' messages and records everything the queue emits."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=10)
        self.seen: set[str] = set()
        self.emitted: list[ContractMessage] = []
        self.printer_revisions: Counter[str] = Counter()
        self.on_start: Any = None

    async def start(self) -> None:
        for kind in (StartPrint, StopPrint, JobChanged, OrderJobsSummarized):
            await self.nc.subscribe(kind.SUBJECT, cb=functools.partial(self._received, kind=kind))

    async def _received(self, msg: Msg, *, kind: type[ContractMessage]) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.id in self.seen or envelope.data is None:
            return
        self.seen.add(envelope.id)
        message = envelope.open(kind)
        self.emitted.append(message)
        if isinstance(message, StartPrint) and self.on_start is not None:
            await self.on_start(message)

    async def publish(self, message: ContractMessage, source: str) -> None:
        envelope = Envelope(
            id=str(uuid.uuid4()), type=message.SUBJECT, source=source, data=message.model_dump(mode="json")
        )
        payload = envelope.model_dump_json().encode()
        await self.js.publish(message.SUBJECT, payload, headers={"Nats-Msg-Id": envelope.id})

    async def printer(self, printer_id: str, material: str, **state: Any) -> None:
        self.printer_revisions[printer_id] += 1
        fields: dict[str, Any] = {
            "name": f"printer {printer_id[:8]}", "model": "X1C", "online": True, "state": "idle", "bed_clear": True,
            "materials": [LoadedMaterial(slot=254, type=material, color="000000FF")],
            "idle_since": datetime.now(UTC) - timedelta(minutes=5), "updated_at": datetime.now(UTC), **state,
        }
        revision = self.printer_revisions[printer_id]
        await self.publish(PrinterChanged(id=printer_id, revision=revision, **fields), "/services/printer-gateway")

    async def report(self, command: StartPrint, status: str, sequence: int) -> None:
        await self.publish(
            PrintUpdated(
                job_id=command.job_id, printer_id=command.printer_id, command_id=command.command_id,
                status=status, sequence=sequence, occurred_at=datetime.now(UTC),
            ),
            "/services/printer-gateway",
        )

    def of(self, kind: type[Any], **where: Any) -> list[Any]:
        return [m for m in self.emitted if isinstance(m, kind) and all(getattr(m, k) == v for k, v in where.items())]


@pytest.fixture
async def wire(queue_stack: Stack) -> AsyncIterator[Wire]:
    nc = await nats.connect(queue_stack.nats_url)
    recorder = Wire(nc)
    await recorder.start()
    try:
        yield recorder
    finally:
        await nc.drain()


@pytest.fixture
async def http(queue_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=queue_stack.service_url("queue"), timeout=30, trust_env=False) as client:
        yield client


def print_request(
    order_id: str, revision: int, material: str, quantities: dict[str, int], *, color: str | None = None
) -> OrderPrintRequested:
    return OrderPrintRequested(
        order_id=order_id,
        order_number=f"#{order_id[:6]}",
        print_revision=revision,
        assignment=Assignment(),
        fulfillment_date=date(2026, 12, 24),
        order_created_at=datetime(2026, 11, 1, tzinfo=UTC),
        line_items=[
            DesiredLineItem(
                line_item_id=line_id, position=position, sku_id=f"sku-{line_id}", sku=f"SKU-{position}",
                quantity=quantity, parameters={"size": position},
                parts=[DesiredPart(part_id=f"part-{order_id}", part_name="bracket", quantity=1,
                                   material=Material(type=material, color=color), file=FILE, grams=7.5)],
            )
            for position, (line_id, quantity) in enumerate(quantities.items())
        ],
    )


async def jobs_of(http: httpx.AsyncClient, order_id: str, **params: Any) -> list[dict[str, Any]]:
    reply = await http.get("/api/v1/jobs", params={"order_id": order_id, "limit": 500, **params})
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


async def test_two_replicas_never_give_one_printer_two_jobs_or_one_job_two_printers(
    queue_stack: Stack, wire: Wire, http: httpx.AsyncClient
) -> None:
    second = await queue_stack.start_service("queue")
    try:
        material = f"PLA-{uuid.uuid4().hex[:6]}"
        printers = [str(uuid.uuid4()) for _ in range(8)]
        running: dict[str, str | None] = dict.fromkeys(printers)
        violations: list[str] = []
        started: Counter[str] = Counter()
        completed: set[str] = set()

        async def gateway(command: StartPrint) -> None:
            """A FabMatic gateway: start at once, finish, clear the bed itself, report the printer ready."""
            if command.printer_id not in running:
                return
            busy_with = running[command.printer_id]
            if busy_with is not None:
                violations.append(f"{command.printer_id} got {command.job_id} while printing {busy_with}")
                return
            running[command.printer_id] = command.job_id
            started[command.job_id] += 1
            await wire.report(command, "started", 1)
            await wire.report(command, "completed", 2)
            running[command.printer_id] = None
            completed.add(command.job_id)
            await wire.printer(command.printer_id, material, state="finished", bed_clear=True,
                               idle_since=datetime.now(UTC))

        wire.on_start = gateway
        orders = [str(uuid.uuid4()) for _ in range(3)]
        for order_id in orders:
            await wire.publish(print_request(order_id, 1, material, {f"{order_id}-l": 15}), "/services/orders")
        for printer_id in printers:
            await wire.printer(printer_id, material)

        await wait_until(lambda: len(completed) >= 45, 120, "45 jobs printed by two queue replicas")
        assert violations == []
        assert set(started.values()) == {1}, "a job was started twice"
        for order_id in orders:
            done = await wait_until(
                functools.partial(_all_completed, http, order_id), 30, "every job of the order completed in the API"
            )
            jobs: list[dict[str, Any]] = done or []
            assert len(jobs) == 15
            assert len({(j["line_item_id"], j["part_id"], j["copy"]) for j in jobs}) == 15
        other = httpx.AsyncClient(base_url=second.url, timeout=30, trust_env=False)
        async with other:
            reply = await other.get("/api/v1/jobs", params={"order_id": orders[0], "status": "completed"})
        assert reply.status_code == 200 and len(reply.json()["items"]) == 15
        summaries = wire.of(OrderJobsSummarized, order_id=orders[0])
        sequences = [s.sequence for s in summaries]
        # Two relays publish side by side, so arrival order may differ; `sequence` orders them, uniquely.
        assert len(set(sequences)) == len(sequences) and sorted(sequences) == list(range(1, len(sequences) + 1))
        assert max(summaries, key=lambda s: s.sequence).totals.completed == 15
    finally:
        wire.on_start = None
        await queue_stack.stop_service(second.name)


async def _all_completed(http: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]] | None:
    jobs = await jobs_of(http, order_id)
    return jobs if jobs and all(j["status"] == "completed" for j in jobs) else None


async def test_reconcile_list_explain_and_operate_through_the_api(
    queue_stack: Stack, wire: Wire, http: httpx.AsyncClient
) -> None:
    material = f"ASA-{uuid.uuid4().hex[:6]}"
    order_id = str(uuid.uuid4())
    first = print_request(order_id, 1, material, {"l-a": 2, "l-b": 1}, color="#112233")
    await wire.publish(first, "/services/orders")
    jobs = await wait_until(lambda: _count(http, order_id, 3), 30, "three jobs queued")
    job = jobs[0]
    assert set(job) >= {
        "id", "order_id", "order_number", "line_item_id", "sku_id", "part_id", "part_name", "copy", "status",
        "printer_id", "material", "parameters", "assignment", "priority", "progress_percent", "error",
        "created_at", "started_at", "finished_at",
    }
    assert (job["status"], job["material"]["type"], job["material"]["color"]) == ("queued", material, "#112233")
    assert [(j["line_item_id"], j["copy"]) for j in jobs] == [("l-a", 1), ("l-a", 2), ("l-b", 1)]

    # Paging: two pages, nothing lost or repeated, under every sort.
    for sort in ("priority", "order_number", "created_at", "-created_at"):
        page = (await http.get("/api/v1/jobs", params={"order_id": order_id, "limit": 2, "sort": sort})).json()
        rest = (await http.get("/api/v1/jobs", params={"order_id": order_id, "cursor": page["next_cursor"],
                                                       "sort": sort})).json()
        assert sorted(j["id"] for j in page["items"] + rest["items"]) == sorted(j["id"] for j in jobs)
        assert rest["next_cursor"] is None
    assert (await http.get("/api/v1/jobs", params={"status": "bogus"})).status_code == 422
    assert (await http.get("/api/v1/jobs", params={"cursor": "garbage"})).status_code in (400, 422)
    assert (await http.get(f"/api/v1/jobs/{uuid.uuid4()}")).status_code == 404
    assert (await http.get("/api/v1/jobs", params={"order_number": first.order_number})).json()["items"]

    # The same state again, and an older revision after it, change nothing.
    await wire.publish(first, "/services/orders")
    await wire.publish(print_request(order_id, 2, material, {"l-a": 1}, color="#112233"), "/services/orders")
    await wire.publish(first, "/services/orders")
    jobs = await wait_until(lambda: _with_status(http, order_id, "cancelled", 2), 30, "two removed copies cancelled")
    assert sorted((j["line_item_id"], j["copy"], j["status"]) for j in jobs) == [
        ("l-a", 1, "queued"), ("l-a", 2, "cancelled"), ("l-b", 1, "cancelled")
    ]
    queued = next(j for j in jobs if j["status"] == "queued")

    # A printer holding the colour (alpha ignored) but with a dirty bed: explained, then given the job.
    printer_id = str(uuid.uuid4())
    await wire.printer(printer_id, material.lower(), bed_clear=False, state="finished",
                       materials=[LoadedMaterial(slot=3, type=material.lower(), color="112233FF")])
    matching = await wait_until(lambda: _verdict(http, queued["id"], printer_id), 30, "the printer in the matching")
    assert matching == "bed_not_clear"
    materials = (await http.get("/api/v1/queue/materials")).json()["items"]
    (demand,) = [m for m in materials if m["type"] == material]
    assert (demand["jobs_waiting"], demand["grams_waiting"], demand["printers_loaded"]) == (1, 7.5, [printer_id])

    assert (await http.patch(f"/api/v1/jobs/{queued['id']}", json={"priority": "low"})).json()["priority"] == "low"
    assert (await http.patch(f"/api/v1/jobs/{queued['id']}", json={"priority": "urgent"})).status_code == 422
    assert (await http.post(f"/api/v1/jobs/{queued['id']}/fail")).status_code == 409

    await wire.printer(printer_id, material, bed_clear=True, state="finished",
                       materials=[LoadedMaterial(slot=3, type=material.lower(), color="112233FF")])
    start = await wait_until(lambda: wire.of(StartPrint, job_id=queued["id"]), 30, "the job dispatched")
    assert start[0].printer_id == printer_id and start[0].file == FILE
    assigned = (await http.get(f"/api/v1/jobs/{queued['id']}")).json()
    assert (assigned["status"], assigned["printer_id"]) == ("assigned", printer_id)

    # The printer never starts it: back to the queue, the printer is told to drop it and left alone.
    await wait_until(lambda: wire.of(StopPrint, job_id=queued["id"]), 3 * DEADLINE_SECONDS + 30, "dispatch expiry")
    back = (await http.get(f"/api/v1/jobs/{queued['id']}")).json()
    assert (back["status"], back["printer_id"]) == ("queued", None) and "did not start" in back["error"]
    assert await _verdict(http, queued["id"], printer_id) == "busy"

    # Operator actions and the states that forbid them.
    cancelled = (await http.post(f"/api/v1/jobs/{queued['id']}/cancel")).json()
    assert cancelled["status"] == "cancelled"
    assert (await http.post(f"/api/v1/jobs/{queued['id']}/cancel")).status_code == 409
    retried = (await http.post(f"/api/v1/jobs/{queued['id']}/retry")).json()
    assert (retried["status"], retried["error"]) == ("queued", None)
    assert (await http.post(f"/api/v1/jobs/{queued['id']}/retry")).status_code == 409
    removed_copy = next(j for j in jobs if j["line_item_id"] == "l-a" and j["copy"] == 2)
    await wire.publish(print_request(order_id, 3, material, {"l-a": 2}, color="#112233"), "/services/orders")
    await wait_until(lambda: _count(http, order_id, 4), 30, "the copy wanted again gets a new job")
    conflict = await http.post(f"/api/v1/jobs/{removed_copy['id']}/retry")
    assert conflict.status_code == 409, conflict.text

    await wire.publish(OrderCancelled(order_id=order_id, print_revision=4), "/services/orders")
    await wait_until(lambda: _with_status(http, order_id, "cancelled", 4), 30, "order cancellation")
    summary = await wait_until(
        lambda: [s for s in wire.of(OrderJobsSummarized, order_id=order_id) if s.print_revision == 4],
        30, "the summary after cancellation",
    )
    assert summary[-1].totals.cancelled == 3 and summary[-1].totals.queued == 0


async def _count(http: httpx.AsyncClient, order_id: str, count: int) -> list[dict[str, Any]] | None:
    jobs = await jobs_of(http, order_id)
    return jobs if len(jobs) == count else None


async def _with_status(http: httpx.AsyncClient, order_id: str, status: str, count: int) -> list[dict[str, Any]] | None:
    jobs = await jobs_of(http, order_id)
    return jobs if sum(j["status"] == status for j in jobs) == count else None


async def _verdict(http: httpx.AsyncClient, job_id: str, printer_id: str) -> str | None:
    reply = await http.get(f"/api/v1/jobs/{job_id}/matching")
    assert reply.status_code == 200, reply.text
    results = {item["printer_id"]: item["result"] for item in reply.json()["items"]}
    return results.get(printer_id)


async def test_printer_reports_drive_the_job(queue_stack: Stack, wire: Wire, http: httpx.AsyncClient) -> None:
    material = f"PETG-{uuid.uuid4().hex[:6]}"
    order_id, printer_id = str(uuid.uuid4()), str(uuid.uuid4())
    await wire.printer(printer_id, material)
    await wire.publish(print_request(order_id, 1, material, {"l": 2}), "/services/orders")
    first = (await wait_until(lambda: wire.of(StartPrint, printer_id=printer_id), 30, "the first dispatch"))[0]
    assert (await http.get(f"/api/v1/jobs/{first.job_id}")).json()["status"] == "assigned"

    await wire.report(first, "started", 1)
    await wait_until(lambda: _job_status(http, first.job_id, "printing"), 30, "printing once started")
    await wire.printer(printer_id, material, online=False, state="offline")
    await wire.report(first, "paused", 2)
    await wait_until(lambda: _job_status(http, first.job_id, "paused"), 30, "paused")
    await wire.report(first, "printing", 4)
    await wire.report(first, "started", 3)
    await wait_until(lambda: _job_status(http, first.job_id, "printing"), 30, "resumed")

    stop = await http.post(f"/api/v1/jobs/{first.job_id}/cancel")
    assert stop.status_code == 200 and stop.json()["status"] == "printing"
    await wait_until(lambda: wire.of(StopPrint, job_id=first.job_id), 30, "StopPrint sent")
    await wire.report(first, "cancelled", 5)
    await wait_until(lambda: _job_status(http, first.job_id, "cancelled"), 30, "cancelled when the printer says so")
    await wire.report(first, "completed", 6)
    assert (await http.get(f"/api/v1/jobs/{first.job_id}")).json()["status"] == "cancelled"

    await wire.printer(printer_id, material, state="idle", bed_clear=True)
    second = await wait_until(
        lambda: [s for s in wire.of(StartPrint, printer_id=printer_id) if s.job_id != first.job_id], 30, "next job"
    )
    await wire.report(second[0], "started", 1)
    await wire.report(second[0], "failed", 2)
    await wait_until(lambda: _job_status(http, second[0].job_id, "failed"), 30, "failed")


async def _job_status(http: httpx.AsyncClient, job_id: str, status: str) -> bool:
    return bool((await http.get(f"/api/v1/jobs/{job_id}")).json()["status"] == status)


async def test_concurrent_matching_passes_serialise_on_the_advisory_lock(queue_stack: Stack) -> None:
    """Six passes at once on one database (as six replicas would run them): none fails on the unique
    indexes, and together they give each ready printer one job and each job one printer."""
    from printqueue.adapters import orm
    from printqueue.domain.commands import RunMatchingPass
    from printqueue.service_layer import handlers, messages
    from printqueue.service_layer.handlers import Deps
    from printqueue.service_layer.matching_pass import run_matching_pass
    from printqueue.service_layer.unit_of_work import UnitOfWork
    from servicekit.database import create_engine, session_factory
    from servicekit.inbox import Inbox
    from servicekit.outbox import Outbox

    engine = create_engine(queue_stack.database_urls["queue"])
    sessions = session_factory(engine)
    deps = Deps()

    def unit_of_work() -> UnitOfWork:
        return UnitOfWork(sessions=sessions, outbox=Outbox(orm.outbox, source="/services/queue"),
                          inbox=Inbox(orm.inbox))

    material = f"PA-{uuid.uuid4().hex[:6]}"
    printers = [f"race-{uuid.uuid4()}" for _ in range(12)]
    try:
        for order in range(3):
            request = print_request(str(uuid.uuid4()), 1, material, {f"line-{order}": 10})
            await handlers.reconcile_order(messages.reconcile_order(request), unit_of_work(), deps)
        for printer_id in printers:
            changed = PrinterChanged(id=printer_id, name=printer_id, model="A1", online=True, state="idle",
                                     bed_clear=True, materials=[LoadedMaterial(slot=0, type=material)], revision=1,
                                     updated_at=datetime.now(UTC))
            await handlers.record_printer(messages.record_printer(changed), unit_of_work(), deps)

        async def one_pass() -> list[Any]:
            async with unit_of_work() as uow:
                done = await run_matching_pass(RunMatchingPass(), uow, deps)
                await uow.commit()
            return done

        results = await asyncio.gather(*(one_pass() for _ in range(6)))
        ours = [d for done in results for d in done if d.printer_id in printers]
        async with sessions() as session:
            rows = (
                await session.execute(
                    sa.select(orm.jobs.c.id, orm.jobs.c.printer_id).where(
                        orm.jobs.c.material_type == material, orm.jobs.c.status.in_(["assigned", "printing"])
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert len(rows) == len(printers), "every ready printer got exactly one job"
    assert len({r.printer_id for r in rows}) == len(rows) and len({r.id for r in rows}) == len(rows)
    assert len({d.job_id for d in ours}) == len(ours) and len({d.printer_id for d in ours}) == len(ours)


async def test_a_large_order_is_reconciled_in_one_go_and_pages_through(
    queue_stack: Stack, wire: Wire, http: httpx.AsyncClient
) -> None:
    material = f"TPU-{uuid.uuid4().hex[:6]}"
    order_id = str(uuid.uuid4())
    request = print_request(order_id, 1, material, {"big": 700, "small": 3})
    await wire.publish(request, "/services/orders")
    summary = await wait_until(lambda: wire.of(OrderJobsSummarized, order_id=order_id), 60, "the order's summary")
    assert (summary[0].added, summary[0].totals.queued, summary[0].line_items["big"].queued) == (703, 703, 700)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"order_id": order_id, "limit": 500, "sort": "priority"}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get("/api/v1/jobs", params=params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 703 and len({j["id"] for j in seen}) == 703
    assert [(j["line_item_id"], j["copy"]) for j in seen[:2]] == [("big", 1), ("big", 2)]
    assert seen[-1]["line_item_id"] == "small" and seen[0]["parameters"] == {"size": 0}
    assert seen[0]["assignment"] == {"mode": "next_available", "printer_id": None, "tags": []}
    assert (await http.get(f"/api/v1/jobs/{seen[0]['id']}")).json()["material"]["type"] == material
