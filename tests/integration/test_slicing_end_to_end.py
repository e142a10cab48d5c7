"""Issue 11 end to end, with the real slicer service (OpenSCAD and PrusaSlicer) in the stack: an OpenSCAD
SKU with a SKU PARAM on three lines and an STL SKU are printed on a printer of the simulated fleet. The two
lines whose values render print different files, the line whose value OpenSCAD refuses fails with the
slicer's report of OpenSCAD's error while the printer goes on with the rest, and a second print-jobs click
slices nothing new. A parameter change on a line re-slices only that line's jobs that have not started."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from contracts.envelope import ContractMessage, Envelope
from contracts.queue.v1 import SlicePart
from contracts.slicer.v1 import SliceCompleted, SliceFailed
from devstack import Stack

from .mesh_files import stl_cube

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
TAG_SCAD = """/* [Text] */
// the name on the tag (six characters at most)
label = "Ada";
assert(len(label) <= 6, "the label is longer than six characters");
linear_extrude(2) square([6 + 4 * len(label), 12]);
"""


class Recorder:
    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.seen: set[str] = set()
        self.messages: list[ContractMessage] = []

    async def start(self) -> None:
        for kind in (SlicePart, SliceCompleted, SliceFailed):
            await self.nc.subscribe(kind.SUBJECT, cb=functools.partial(self._received, kind=kind))

    async def _received(self, msg: Msg, *, kind: type[ContractMessage]) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        if envelope.id not in self.seen and envelope.data is not None:
            self.seen.add(envelope.id)
            self.messages.append(envelope.open(kind))

    def of(self, kind: type[Any], source: str) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind) and _source(m) == source]


def _source(message: Any) -> str:
    return str(message.source.sha256 if isinstance(message, SlicePart) else message.source_sha256)


@pytest.fixture
async def wire(stack: Stack) -> AsyncIterator[Recorder]:
    if "slicer" not in stack.config.services:
        pytest.skip("this stack runs no slicer service")
    nc = await nats.connect(stack.nats_url)
    recorder = Recorder(nc)
    await recorder.start()
    try:
        yield recorder
    finally:
        await nc.drain()


async def pla_printer(api: httpx.AsyncClient, wait_until: Wait) -> dict[str, Any]:
    """An idle Bambu printer without FabMatic holding PLA, its bed cleared. Waited for: a test before this one
    may have restarted a service, and the fleet is back online a few seconds later (seen in CI)."""

    async def idle_pla_printers() -> list[dict[str, Any]] | None:
        printers = (await api.get("/api/v1/printers?limit=500")).json()["items"]
        found = [
            p for p in printers
            if p["online"] and p["protocol"] == "bambu_lan" and not p["fabmatic"] and not p["current_job_id"]
            and any((m.get("type") or "").upper() == "PLA" for m in p.get("materials") or [])
        ]
        return found or None

    candidates = await wait_until(
        idle_pla_printers, 120, "the simulated fleet to have an idle Bambu printer without FabMatic holding PLA"
    )
    printer: dict[str, Any] = candidates[0]
    if not printer["bed_clear"]:
        await api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")
    return printer


async def test_parametric_and_mesh_parts_are_sliced_by_the_slicer_and_print_on_the_fleet(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait, wire: Recorder
) -> None:
    assert stack.sim is not None
    control = httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30)

    async def upload(name: str, data: bytes) -> dict[str, Any]:
        reply = await api.post("/api/v1/parts", files={"file": (name, data)},
                               data={"name": f"{name} {uuid.uuid4().hex[:6]}", "material_type": "PLA"})
        assert reply.status_code == 201, reply.text
        body: dict[str, Any] = reply.json()
        return body

    tag, cube = await upload("tag.scad", TAG_SCAD.encode()), await upload("cube.stl", stl_cube(12.0))
    skus = []
    for part, params in ((tag, ["label"]), (cube, [])):
        sku = await api.post("/api/v1/skus", json={
            "sku": f"E2E-{uuid.uuid4().hex[:8]}", "name": part["name"],
            "parts": [{"part_id": part["id"], "quantity": 1, "sku_params": params}],
        })
        assert sku.status_code == 201, sku.text
        skus.append(sku.json()["id"])
    order = await api.post("/api/v1/orders", json={
        "order_number": f"E2E-{uuid.uuid4().hex[:6]}",
        "line_items": [
            {"sku_id": skus[0], "quantity": 1, "parameters": {"label": "Ada"}},
            {"sku_id": skus[0], "quantity": 1, "parameters": {"label": "Grace"}},
            {"sku_id": skus[0], "quantity": 1, "parameters": {"label": "Bartholomew"}},
            {"sku_id": skus[1], "quantity": 1},
        ],
    })
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    assert [m["grams"] for m in order.json()["materials"]] == [0.0], "an uploaded mesh or SCAD declares no weight"
    # One printer takes the order: the queue slices for the models its assignment allows, and one model makes
    # the point (every model of the fleet slicing every part would keep the one slicer busy for minutes).
    printer = await pla_printer(api, wait_until)
    assignment = {"assignment": {"mode": "printer", "printer_id": printer["id"]}}
    click = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json=assignment)
    assert click.status_code == 202, click.text

    async def jobs() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await api.get(f"/api/v1/jobs?order_id={order_id}")).json()["items"]
        return items

    async def settled() -> list[dict[str, Any]] | None:
        """Clears finished beds as an operator would, until every job is completed or failed."""
        current = await jobs()
        if len(current) == 4 and all(j["status"] in ("completed", "failed") for j in current):
            return current
        for printer in (await api.get("/api/v1/printers?limit=500")).json()["items"]:
            if printer["online"] and not printer["bed_clear"] and not printer["current_job_id"]:
                await api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")
        return None

    done = await wait_until(settled, 600, "every job sliced and printed, or failed by its slice")
    by_label = {j["parameters"].get("label"): j for j in done}
    refused = by_label["Bartholomew"]
    # The printer's model has a profile that takes PLA: only OpenSCAD refuses a value, and only the one it
    # cannot render.
    failures = wire.of(SliceFailed, tag["sha256"])
    assert failures and {f.stage for f in failures} == {"render"}
    assert refused["status"] == "failed" and refused["error"] in {f.error for f in failures}, refused["error"]
    printed = [j for j in done if j is not refused]
    assert all(j["status"] == "completed" for j in printed), [(j["status"], j["error"]) for j in printed]

    files: dict[str, str] = {}
    for sim_printer in stack.sim.printers:
        detail = (await control.get(f"/printers/{sim_printer.serial}")).json()
        files.update({f["name"]: f["sha256"] for f in detail["files"]})
    at_printer = {j["id"]: files[f"{j['id']}.gcode.3mf"] for j in printed}
    assert at_printer[by_label["Ada"]["id"]] != at_printer[by_label["Grace"]["id"]], "each value prints its own file"
    for job in printed:
        assert job["file"]["sha256"] == at_printer[job["id"]] and job["file"]["kind"] == "gcode.3mf"
        assert job["file"]["print_minutes"] and job["file"]["grams"]

    # The order's material totals are the slicer's grams of the jobs that printed (the refused one has none).
    sliced_grams = sum(j["file"]["grams"] for j in printed)

    async def materials_sliced() -> list[dict[str, Any]] | None:
        materials: list[dict[str, Any]] = (await api.get(f"/api/v1/orders/{order_id}")).json()["materials"]
        return materials if [m["grams"] for m in materials] == [pytest.approx(sliced_grams, abs=0.01)] else None

    (material,) = await wait_until(materials_sliced, 30, f"the order's materials to show {sliced_grams} g")
    assert material["type"] == "PLA" and material["grams"] > 0

    # Requests only: a slice for another model of the fleet may still be answering after every job ended.
    asked = len([m for m in wire.messages if isinstance(m, SlicePart)])
    assert {m.printer_model for m in wire.of(SlicePart, tag["sha256"])} == {printer["model"]}
    again = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json=assignment)
    assert again.status_code == 202, again.text
    revision = again.json()["print_revision"]

    async def applied() -> bool:
        body = (await api.get(f"/api/v1/orders/{order_id}")).json()
        return bool(body["queue_print_revision"] == revision)

    await wait_until(applied, 30, "the queue to apply the second click")
    assert len([m for m in wire.messages if isinstance(m, SlicePart)]) == asked, "the second click asked for nothing"
    assert len(await jobs()) == 4
    await control.aclose()


async def test_a_parameter_change_re_slices_only_that_line_s_jobs_that_have_not_started(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait, wire: Recorder
) -> None:
    """One printer takes the order (assignment `printer`): it prints the first of line A's two tags and then
    waits for its bed to be cleared, so line A has a completed and a queued job and line B a queued one.
    Line A's value changes and print-jobs is clicked again: the slicer is asked only for the new value, line
    A's queued job prints a new file, its completed job and line B's job are untouched. The labels differ in
    length: the tag's size is what the label changes, so each value slices into its own file."""
    printer = await pla_printer(api, wait_until)

    part = await api.post("/api/v1/parts", files={"file": ("tag.scad", TAG_SCAD.encode())},
                          data={"name": f"tag {uuid.uuid4().hex[:6]}", "material_type": "PLA"})
    assert part.status_code == 201, part.text
    source = part.json()["sha256"]
    sku = await api.post("/api/v1/skus", json={
        "sku": f"E2E-{uuid.uuid4().hex[:8]}", "name": "name tag",
        "parts": [{"part_id": part.json()["id"], "quantity": 1, "sku_params": ["label"]}],
    })
    assert sku.status_code == 201, sku.text
    sku_id = sku.json()["id"]
    order = await api.post("/api/v1/orders", json={
        "order_number": f"E2E-{uuid.uuid4().hex[:6]}",
        "fulfillment_date": "2020-01-01",  # before any other test's order: the printer takes these first
        "line_items": [{"sku_id": sku_id, "quantity": 2, "parameters": {"label": "Ada"}}],
    })
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    line_a = order.json()["line_items"][0]["id"]
    assignment = {"assignment": {"mode": "printer", "printer_id": printer["id"]}}

    async def jobs() -> list[dict[str, Any]]:
        reply = await api.get("/api/v1/jobs", params={"order_id": order_id, "limit": 500})
        assert reply.status_code == 200, reply.text
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    async def click() -> None:
        reply = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json=assignment)
        assert reply.status_code == 202, reply.text
        revision = reply.json()["print_revision"]

        async def applied() -> bool:
            return bool((await api.get(f"/api/v1/orders/{order_id}")).json()["queue_print_revision"] == revision)

        await wait_until(applied, 60, f"the queue to apply print revision {revision}")

    def shape(current: list[dict[str, Any]], line: str, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
        return [j for j in current if j["line_item_id"] == line and j["status"] in statuses]

    await click()

    async def one_printed_one_waiting() -> list[dict[str, Any]] | None:
        current = await jobs()
        failed = [j["error"] for j in current if j["status"] == "failed"]
        assert not failed, failed
        done, waiting = shape(current, line_a, ("completed",)), shape(current, line_a, ("queued",))
        if len(done) == 1 and len(waiting) == 1 and waiting[0]["file"] is not None:
            return current
        return None

    await wait_until(one_printed_one_waiting, 600, "line A's first tag printed and its second sliced and waiting")
    added = await api.post(f"/api/v1/orders/{order_id}/line-items",
                           json={"sku_id": sku_id, "quantity": 1, "parameters": {"label": "Grace"}})
    assert added.status_code == 201, added.text
    line_b = next(li["id"] for li in added.json()["line_items"] if li["id"] != line_a)
    await click()

    async def line_b_waiting() -> list[dict[str, Any]] | None:
        current = await jobs()
        waiting = shape(current, line_b, ("queued",))
        return current if len(waiting) == 1 and waiting[0]["file"] is not None else None

    before = {j["id"]: j for j in await wait_until(line_b_waiting, 600, "line B's tag sliced and waiting")}
    (printed,) = shape(list(before.values()), line_a, ("completed",))
    (waiting_a,) = shape(list(before.values()), line_a, ("queued",))
    (waiting_b,) = shape(list(before.values()), line_b, ("queued",))
    assert printed["file"]["sha256"] == waiting_a["file"]["sha256"] != waiting_b["file"]["sha256"]

    asked = len(wire.of(SlicePart, source))
    patched = await api.patch(f"/api/v1/orders/{order_id}/line-items/{line_a}", json={"parameters": {"label": "Cy"}})
    assert patched.status_code == 200, patched.text
    await click()

    async def re_sliced() -> list[dict[str, Any]] | None:
        current = await jobs()
        job = next(j for j in current if j["id"] == waiting_a["id"])
        assert job["status"] in ("slicing", "queued"), (job["status"], job["error"])
        return current if job["status"] == "queued" and job["file"] is not None else None

    after = {j["id"]: j for j in await wait_until(re_sliced, 600, "line A's waiting tag sliced with the new value")}
    assert set(after) == set(before), "the change kept every job (identity is line, part, copy)"
    changed = after[waiting_a["id"]]
    assert changed["parameters"] == {"label": "Cy"}
    assert changed["file"]["sha256"] not in (waiting_a["file"]["sha256"], waiting_b["file"]["sha256"])
    assert changed["file"]["print_minutes"] and changed["file"]["grams"]
    for untouched in (printed, waiting_b):
        now = after[untouched["id"]]
        assert (now["status"], now["parameters"], now["file"], now["revision"]) == (
            untouched["status"], untouched["parameters"], untouched["file"], untouched["revision"]
        ), untouched["id"]
    new_requests = wire.of(SlicePart, source)[asked:]
    assert new_requests and {r.parameters["label"] for r in new_requests} == {"Cy"}, "only the changed line is sliced"
    assert {r.printer_model for r in new_requests} == {printer["model"]}, "only for the assigned printer's model"

    # Leave the printer to the other tests: nothing of this order waits for it, its bed is cleared.
    assert (await api.post(f"/api/v1/orders/{order_id}/cancel")).status_code == 200

    async def printer_free() -> bool:
        return not (await api.get(f"/api/v1/printers/{printer['id']}")).json()["current_job_id"]

    await wait_until(printer_free, 120, "the printer done with this order")
    await api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")
