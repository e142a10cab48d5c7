"""Slicing in the queue service alone, on real PostgreSQL and NATS JetStream: the test plays the orders
service, the printer gateways and the slicer by publishing their contract messages (answers duplicated
and out of order, as JetStream may deliver them) and reads what the queue emits and serves."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from contracts.envelope import ContractMessage, Envelope
from contracts.orders.v1 import DesiredLineItem, DesiredPart, OrderPrintRequested
from contracts.printers.v1 import LoadedMaterial, PrinterChanged
from contracts.queue.v1 import JobChanged, SlicePart, StartPrint
from contracts.shared_values import Assignment, FileRef, Material
from contracts.slicer.v1 import SLICED_FILES_BUCKET, SliceCompleted, SliceEstimate, SliceFailed
from devstack import Stack, StackConfig, wait_until

pytestmark = pytest.mark.integration

OPENSCAD_ERROR = "ERROR: Parser error in file \"tag.scad\", line 4: syntax error"


@pytest.fixture(scope="module")
async def queue_stack() -> AsyncIterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-queue-slicing-it-"))
    config = StackConfig.for_tests(
        folder, os.environ, services=("queue",), start_simulator=False, extra_env={"MATCH_INTERVAL_SECONDS": "0.3"}
    )
    try:
        async with Stack(config) as running:
            yield running
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


class Wire:
    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.seen: set[str] = set()
        self.emitted: list[ContractMessage] = []
        self.revisions: dict[str, int] = {}

    async def start(self) -> None:
        for kind in (StartPrint, JobChanged, SlicePart):
            await self.nc.subscribe(kind.SUBJECT, cb=functools.partial(self._received, kind=kind))

    async def _received(self, msg: Msg, *, kind: type[ContractMessage]) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.id not in self.seen and envelope.data is not None:
            self.seen.add(envelope.id)
            self.emitted.append(envelope.open(kind))

    async def publish(self, message: ContractMessage, *, message_id: str | None = None) -> None:
        envelope = Envelope(
            id=message_id or str(uuid.uuid4()), type=message.SUBJECT, source="/test",
            data=message.model_dump(mode="json"),
        )
        await self.nc.jetstream(timeout=10).publish(
            message.SUBJECT, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": envelope.id}
        )

    async def printer(self, printer_id: str, model: str, material: str, **state: Any) -> None:
        self.revisions[printer_id] = self.revisions.get(printer_id, 0) + 1
        fields: dict[str, Any] = {
            "name": f"{model.lower()}-{printer_id[:6]}", "model": model, "online": True, "state": "idle",
            "bed_clear": True, "materials": [LoadedMaterial(slot=0, type=material, color="#FFFFFFFF")],
            "idle_since": datetime.now(UTC) - timedelta(minutes=10), "updated_at": datetime.now(UTC), **state,
        }
        await self.publish(PrinterChanged(id=printer_id, revision=self.revisions[printer_id], **fields))

    def of(self, kind: type[Any], **where: Any) -> list[Any]:
        return [m for m in self.emitted if isinstance(m, kind) and all(getattr(m, k) == v for k, v in where.items())]

    def requests_for(self, sha256: str) -> list[SlicePart]:
        return [r for r in self.of(SlicePart) if r.source.sha256 == sha256]


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


def source(kind: str) -> FileRef:
    return FileRef(sha256=uuid.uuid4().hex * 2, filename=f"part.{kind}", kind=kind, size_bytes=321)  # type: ignore[arg-type]


def print_request(order_id: str, revision: int, material: str, file: FileRef, lines: dict[str, dict[str, Any]],
                  *, quantity: int = 1, grams: float | None = None) -> OrderPrintRequested:
    """Every test's jobs ask for the tag named like its material, so printers of other tests never fit."""
    return OrderPrintRequested(
        order_id=order_id, order_number=f"#{order_id[:6]}", print_revision=revision,
        assignment=Assignment(mode="tags", tags=[material]),
        fulfillment_date=date(2026, 12, 24), order_created_at=datetime(2026, 11, 1, tzinfo=UTC),
        line_items=[
            DesiredLineItem(
                line_item_id=line_id, position=position, sku_id="sku-tag", sku="TAG", quantity=quantity,
                parameters=values,
                parts=[DesiredPart(part_id=f"part-{file.sha256[:8]}", part_name="name tag", quantity=1,
                                   material=Material(type=material, color="#FFFFFF"), file=file,
                                   grams=grams)],
            )
            for position, (line_id, values) in enumerate(lines.items())
        ],
    )


def completed(request: SlicePart, sha256: str, *, minutes: float = 25.0, grams: float = 4.2) -> SliceCompleted:
    return SliceCompleted(
        slice_key=request.slice_key, source_sha256=request.source.sha256, parameters=request.parameters,
        printer_model=request.printer_model, fabmatic=request.fabmatic, material=request.material,
        profile=f"{request.printer_model} 0.20mm Standard",
        file=FileRef(sha256=sha256, filename="tag.gcode.3mf", kind="gcode.3mf", size_bytes=9000,
                     bucket=SLICED_FILES_BUCKET),
        estimate=SliceEstimate(print_minutes=minutes, grams=grams), completed_at=datetime.now(UTC),
    )


def failed(request: SlicePart, error: str = OPENSCAD_ERROR) -> SliceFailed:
    return SliceFailed(
        slice_key=request.slice_key, source_sha256=request.source.sha256, printer_model=request.printer_model,
        fabmatic=request.fabmatic, material=request.material, stage="render", error=error,
        failed_at=datetime.now(UTC),
    )


async def jobs_of(http: httpx.AsyncClient, order_id: str, *statuses: str) -> list[dict[str, Any]] | None:
    reply = await http.get("/api/v1/jobs", params={"order_id": order_id, "limit": 500})
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items if items and all(j["status"] in statuses for j in items) else None


async def verdicts(http: httpx.AsyncClient, job_id: str) -> dict[str, tuple[str, str | None]]:
    reply = await http.get(f"/api/v1/jobs/{job_id}/matching")
    assert reply.status_code == 200, reply.text
    return {i["printer_id"]: (i["result"], i.get("detail")) for i in reply.json()["items"]}


async def test_a_scad_part_is_sliced_once_per_model_and_values_and_prints_only_where_sliced(
    wire: Wire, http: httpx.AsyncClient
) -> None:
    material = f"PLA-{uuid.uuid4().hex[:6]}"
    x1c, a1 = str(uuid.uuid4()), str(uuid.uuid4())
    await wire.printer(x1c, "X1C", material, state="printing", tags=[material])
    await wire.printer(a1, "A1", material, state="printing", tags=[material])
    scad = source("scad")
    order_id = str(uuid.uuid4())
    # The part declares 1 g; the slices' 4.2 g is what the material plan counts once a job is sliced.
    first = print_request(order_id, 1, material, scad, {"ada": {"label": "Ada"}, "bob": {"label": "Bob"}}, quantity=2,
                          grams=1.0)
    await wire.publish(first)
    jobs = await wait_until(lambda: jobs_of(http, order_id, "slicing"), 30, "four jobs slicing")
    assert len(jobs) == 4 and all(j["file"] is None for j in jobs)
    requests = await wait_until(lambda: len(wire.requests_for(scad.sha256)) == 4 and wire.requests_for(scad.sha256),
                                30, "one request per (values, model)")
    assert sorted((r.parameters["label"], r.printer_model) for r in requests) == [
        ("Ada", "A1"), ("Ada", "X1C"), ("Bob", "A1"), ("Bob", "X1C")
    ]
    assert len({r.slice_key for r in requests}) == 4
    reasons = await verdicts(http, jobs[0]["id"])
    assert {r for r, _ in reasons.values()} == {"slicing"}

    # The same click again and another order of the same values ask nothing new.
    await wire.publish(print_request(order_id, 2, material, scad, {"ada": {"label": "Ada"}, "bob": {"label": "Bob"}},
                                     quantity=2, grams=1.0))
    other = str(uuid.uuid4())
    await wire.publish(print_request(other, 1, material, scad, {"ada2": {"label": "Ada"}}, grams=1.0))
    await wait_until(lambda: jobs_of(http, other, "slicing"), 30, "the other order's job")

    by = {(r.parameters["label"], r.printer_model): r for r in requests}
    ada_x1c = completed(by[("Ada", "X1C")], "a" * 64)
    answer_id = str(uuid.uuid4())
    await wire.publish(failed(by[("Ada", "A1")], "no A1 profile for this material"))
    await wire.publish(ada_x1c, message_id=answer_id)
    await wire.publish(ada_x1c)
    await wire.publish(completed(by[("Bob", "X1C")], "b" * 64))
    await wire.publish(completed(by[("Bob", "A1")], "c" * 64))
    ready = await wait_until(lambda: jobs_of(http, order_id, "queued"), 30, "every job queued once sliced")
    files = {(j["line_item_id"], j["file"]["sha256"]) for j in ready}
    assert ("ada", "a" * 64) in files and all(sha in ("b" * 64, "c" * 64) for line, sha in files if line == "bob")
    assert ready[0]["file"]["profile"].endswith("0.20mm Standard") and ready[0]["file"]["print_minutes"] == 25.0
    await wait_until(lambda: jobs_of(http, other, "queued"), 30, "the other order's job queued by the same slice")
    assert len(wire.of(SlicePart)) >= 4 and len(wire.requests_for(scad.sha256)) == 4

    ada_job = next(j for j in ready if j["line_item_id"] == "ada")
    reasons = await verdicts(http, ada_job["id"])
    assert reasons[a1] == ("file_mismatch", "slicing for A1 failed: no A1 profile for this material")
    assert reasons[x1c][0] == "busy"
    materials = (await http.get("/api/v1/queue/materials")).json()["items"]
    (demand,) = [m for m in materials if m["type"] == material]
    assert demand["jobs_waiting"] == 5 and demand["grams_waiting"] == pytest.approx(5 * 4.2)

    # Only the X1C may print Ada's tags, with the X1C slice; the A1 takes Bob's.
    await wire.printer(a1, "A1", material, state="idle", tags=[material])
    start_a1 = await wait_until(lambda: wire.of(StartPrint, printer_id=a1), 30, "the A1's dispatch")
    assert start_a1[0].file.sha256 == "c" * 64 and start_a1[0].file.bucket == SLICED_FILES_BUCKET
    await wire.printer(x1c, "X1C", material, state="idle", tags=[material])
    start_x1c = await wait_until(lambda: wire.of(StartPrint, printer_id=x1c), 30, "the X1C's dispatch")
    assert start_x1c[0].file.sha256 in ("a" * 64, "b" * 64)
    assigned = (await http.get(f"/api/v1/jobs/{start_a1[0].job_id}")).json()
    assert (assigned["status"], assigned["file"]["sha256"]) == ("assigned", "c" * 64)


async def test_a_slice_that_fails_for_every_model_fails_the_job_with_the_tool_s_message(
    wire: Wire, http: httpx.AsyncClient
) -> None:
    material = f"PETG-{uuid.uuid4().hex[:6]}"
    printer_id = str(uuid.uuid4())
    await wire.printer(printer_id, "P1S", material, state="printing", fabmatic=True, tags=[material])
    scad = source("scad")
    order_id = str(uuid.uuid4())
    await wire.publish(print_request(order_id, 1, material, scad, {"l": {"label": "x"}}))
    (request,) = await wait_until(lambda: wire.requests_for(scad.sha256), 30, "the slice request")
    assert (request.printer_model, request.fabmatic) == ("P1S", True)
    await wire.publish(failed(request))
    (job,) = await wait_until(lambda: jobs_of(http, order_id, "failed"), 30, "the job failed by its slice")
    assert job["error"] == OPENSCAD_ERROR
    assert (await verdicts(http, job["id"]))[printer_id][0] == "file_mismatch"
    await wire.publish(completed(request, "d" * 64))

    async def sliced_after_all() -> bool:
        return (await verdicts(http, job["id"]))[printer_id][0] == "busy"

    await wait_until(sliced_after_all, 30, "a late success to be recorded")
    retried = (await http.post(f"/api/v1/jobs/{job['id']}/retry")).json()
    assert (retried["status"], retried["file"]["sha256"]) == ("queued", "d" * 64), "the late file counts on retry"


async def test_an_stl_waits_for_a_printer_model_then_is_sliced_for_it(wire: Wire, http: httpx.AsyncClient) -> None:
    material = f"ASA-{uuid.uuid4().hex[:6]}"
    stl = source("stl")
    order_id = str(uuid.uuid4())
    request = print_request(order_id, 1, material, stl, {"a": {"label": "A"}, "b": {"label": "B"}})
    await wire.publish(request)
    jobs = await wait_until(lambda: jobs_of(http, order_id, "slicing"), 30, "jobs slicing with no printer yet")
    assert wire.requests_for(stl.sha256) == []
    printer_id = str(uuid.uuid4())
    await wire.printer(printer_id, "P1P", material, tags=[material])
    (slice_request,) = await wait_until(lambda: wire.requests_for(stl.sha256), 30, "the P1P's slice request")
    assert slice_request.parameters == {}
    await wire.publish(completed(slice_request, "e" * 64, grams=11.0))
    start = await wait_until(lambda: wire.of(StartPrint, printer_id=printer_id), 30, "the dispatch")
    assert start[0].file.sha256 == "e" * 64 and start[0].job_id in {j["id"] for j in jobs}
