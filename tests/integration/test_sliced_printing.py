"""Parts that need slicing print through every service: an OpenSCAD part with a SKU PARAM on two lines with
different values and an STL part are sliced ahead for the printer's model, the printer gateway fetches each
slice from `sliced-files`, and the printer receives one distinct file per slicing input.

A stand-in answers the slice requests here as the slicer service does (a sliced project into the
`sliced-files` object store, then `SliceCompleted`), so the test holds the queue and the gateway to the
slicer's contract without depending on how it slices."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from contracts.envelope import Envelope
from contracts.queue.v1 import SlicePart
from contracts.slicer.v1 import SLICED_FILES_BUCKET, SliceCompleted, SliceEstimate
from devstack import Stack

from .mesh_files import stl_cube
from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
TPU_PRINTER = "a1-01"
TAG_SCAD = """/* [Text] */
// the name on the tag
label = "Ada";
cube([30, 12, 2]);
"""


class StandInSlicer:
    """Answers every SlicePart once with a distinct project per slice key, the way the slicer does."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.requests: list[SlicePart] = []
        self.made: dict[str, str] = {}
        """slice_key → sha256 of the project it made."""

    async def start(self) -> None:
        js = self.nc.jetstream(timeout=10)
        try:
            self.store = await js.object_store(SLICED_FILES_BUCKET)
        except NotFoundError:
            self.store = await js.create_object_store(SLICED_FILES_BUCKET)
        await self.nc.subscribe(SlicePart.SUBJECT, cb=self._on_request)

    async def _on_request(self, msg: Msg) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.data is None:
            return
        request = envelope.open(SlicePart)
        self.requests.append(request)
        data = gcode_3mf(minutes=10, grams=3.0, filament=request.material.type, note=request.slice_key)
        sha256 = hashlib.sha256(data).hexdigest()
        await self.store.put(sha256, data)
        self.made[request.slice_key] = sha256
        answer = SliceCompleted(
            slice_key=request.slice_key, source_sha256=request.source.sha256, parameters=request.parameters,
            printer_model=request.printer_model, fabmatic=request.fabmatic, material=request.material,
            profile=f"{request.printer_model} 0.20mm Standard",
            file={"sha256": sha256, "filename": "part.gcode.3mf", "kind": "gcode.3mf", "size_bytes": len(data),
                  "bucket": SLICED_FILES_BUCKET},
            estimate=SliceEstimate(print_minutes=10, grams=3.0), completed_at=datetime.now(UTC),
        )
        reply = Envelope(id=str(uuid.uuid4()), type=answer.SUBJECT, source="/services/slicer",
                         data=answer.model_dump(mode="json"))
        await self.nc.jetstream(timeout=10).publish(
            answer.SUBJECT, reply.model_dump_json().encode(), headers={"Nats-Msg-Id": reply.id}
        )

    def for_source(self, sha256: str) -> list[SlicePart]:
        return [r for r in self.requests if r.source.sha256 == sha256]


@pytest.fixture
async def slicer(stack: Stack) -> AsyncIterator[StandInSlicer]:
    if "slicer" in stack.config.services:
        pytest.skip("the stack runs the real slicer, whose answers would race the stand-in's: "
                    "test_slicing_end_to_end.py covers this flow")
    nc = await nats.connect(stack.nats_url)
    stand_in = StandInSlicer(nc)
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await nc.drain()


async def test_scad_lines_with_different_values_and_an_stl_print_their_own_slices(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait, slicer: StandInSlicer
) -> None:
    assert stack.sim is not None
    control = httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30)
    serial = stack.sim.printer(TPU_PRINTER).serial
    printers = (await api.get("/api/v1/printers?limit=500")).json()["items"]
    printer_id = next(p["id"] for p in printers if p["name"] == TPU_PRINTER)

    async def upload(name: str, data: bytes) -> dict[str, Any]:
        reply = await api.post("/api/v1/parts", files={"file": (name, data)},
                               data={"name": f"{name} {uuid.uuid4().hex[:6]}", "material_type": "TPU"})
        assert reply.status_code == 201, reply.text
        body: dict[str, Any] = reply.json()
        return body

    tag, cube = await upload("tag.scad", TAG_SCAD.encode()), await upload("cube.stl", stl_cube())
    skus = []
    for part, params in ((tag, ["label"]), (cube, [])):
        sku = await api.post("/api/v1/skus", json={
            "sku": f"SL-{uuid.uuid4().hex[:8]}", "name": part["name"],
            "parts": [{"part_id": part["id"], "quantity": 1, "sku_params": params}],
        })
        assert sku.status_code == 201, sku.text
        skus.append(sku.json()["id"])
    order = await api.post("/api/v1/orders", json={
        "order_number": f"SL-{uuid.uuid4().hex[:6]}",
        "line_items": [
            {"sku_id": skus[0], "quantity": 1, "parameters": {"label": "Ada"}},
            {"sku_id": skus[0], "quantity": 1, "parameters": {"label": "Bob"}},
            {"sku_id": skus[1], "quantity": 1},
        ],
    })
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    assignment = {"assignment": {"mode": "printer", "printer_id": printer_id}}
    click = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json=assignment)
    assert click.status_code == 202, click.text

    async def jobs() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await api.get(f"/api/v1/jobs?order_id={order_id}")).json()["items"]
        return items

    async def all_completed() -> list[dict[str, Any]] | None:
        """Clears the bed after each print, as the operator would, until every job is completed."""
        current = await jobs()
        if len(current) == 3 and all(j["status"] == "completed" for j in current):
            return current
        printer = (await api.get(f"/api/v1/printers/{printer_id}")).json()
        if printer["online"] and not printer["bed_clear"] and not printer["current_job_id"]:
            await api.post(f"/api/v1/printers/{printer_id}/bed-cleared")
        return None

    done = await wait_until(all_completed, 180, "every job sliced and printed")
    assert len(slicer.for_source(tag["sha256"])) == 2 and len(slicer.for_source(cube["sha256"])) == 1
    assert {r.printer_model for r in slicer.requests if r.source.sha256 in (tag["sha256"], cube["sha256"])} == {"A1"}
    assert {r.parameters.get("label") for r in slicer.for_source(tag["sha256"])} == {"Ada", "Bob"}
    assert slicer.for_source(cube["sha256"])[0].parameters == {}

    detail = (await control.get(f"/printers/{serial}")).json()
    at_printer = {f["name"]: f["sha256"] for f in detail["files"]}
    printed = {j["id"]: at_printer[f"{j['id']}.gcode.3mf"] for j in done}
    assert len(set(printed.values())) == 3, "each slicing input printed its own file"
    assert set(printed.values()) <= set(slicer.made.values())
    for job in done:
        assert job["file"]["sha256"] == printed[job["id"]] and job["file"]["kind"] == "gcode.3mf"
        assert job["file"]["profile"] == "A1 0.20mm Standard" and job["printer_id"] == printer_id
    by_label = {j["parameters"].get("label"): printed[j["id"]] for j in done if j["part_id"] == tag["id"]}
    assert by_label["Ada"] != by_label["Bob"]

    # A second click slices nothing new (and, everything being printed, adds nothing).
    asked = len(slicer.requests)
    again = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json=assignment)
    assert again.status_code == 202, again.text
    revision = again.json()["print_revision"]

    async def applied() -> bool:
        body = (await api.get(f"/api/v1/orders/{order_id}")).json()
        return bool(body["queue_print_revision"] == revision)

    await wait_until(applied, 30, "the queue to apply the second click")
    assert len(slicer.requests) == asked and len(await jobs()) == 3
    await control.aclose()
