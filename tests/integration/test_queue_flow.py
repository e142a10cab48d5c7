"""The print queue through the API gateway on the whole stack with the simulated fleet: a job pinned to one
printer, explained, printed, stopped by an operator, retried, rejected and retried again."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]


async def a_loaded_printer(api: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """An online Bambu printer (the part is a `.gcode.3mf`; other tests may leave G-code printers in the shared
    stack) and one spool it holds (the job will ask for exactly that type and colour)."""
    reply = await api.get("/api/v1/printers")
    assert reply.status_code == 200, reply.text
    for printer in reply.json()["items"]:
        loaded = [m for m in printer.get("materials") or [] if m.get("type")]
        if printer.get("online") and loaded and printer.get("protocol") == "bambu_lan":
            return printer, loaded[0]
    raise AssertionError("no online printer with a loaded material")


async def job(api: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    reply = await api.get(f"/api/v1/jobs/{job_id}")
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


async def clear_bed(api: httpx.AsyncClient, printer_id: str) -> None:
    printer = (await api.get(f"/api/v1/printers/{printer_id}")).json()
    if printer.get("bed_clear") is False and printer.get("state") in ("finished", "idle"):
        await api.post(f"/api/v1/printers/{printer_id}/bed-cleared")


async def test_a_job_pinned_to_a_printer_is_explained_printed_stopped_and_retried(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait
) -> None:
    printer, spool = await a_loaded_printer(api)
    material = spool["type"]
    fields = {"name": f"pin {uuid.uuid4().hex[:6]}", "material_type": material}
    if spool.get("color"):
        fields["material_color"] = "#" + spool["color"].lstrip("#")[:6].upper()
    part = await api.post(
        "/api/v1/parts",
        data=fields,
        files={"file": ("pin.gcode.3mf", gcode_3mf(minutes=180, grams=3.0, filament=material))},
    )
    assert part.status_code == 201, part.text
    sku = await api.post(
        "/api/v1/skus",
        json={
            "sku": f"Q-{uuid.uuid4().hex[:10]}",
            "name": "Pin",
            "parts": [{"part_id": part.json()["id"], "quantity": 1}],
        },
    )
    assert sku.status_code == 201, sku.text
    created = await api.post(
        "/api/v1/orders",
        json={"order_number": f"Q-{uuid.uuid4().hex[:6]}", "line_items": [{"sku_id": sku.json()["id"], "quantity": 1}]},
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    sent = await api.post(
        f"/api/v1/orders/{order_id}/print-jobs", json={"assignment": {"mode": "printer", "printer_id": printer["id"]}}
    )
    assert sent.status_code == 202, sent.text

    async def the_job() -> dict[str, Any] | None:
        reply = await api.get("/api/v1/jobs", params={"order_id": order_id})
        items = reply.json()["items"]
        return items[0] if items else None

    queued = await wait_until(the_job, 60, "the queue to create the job")
    assert queued["assignment"] == {"mode": "printer", "printer_id": printer["id"], "tags": []}
    assert queued["copy"] == 1 and queued["material"]["type"].casefold() == material.casefold()
    explained = (await api.get(f"/api/v1/jobs/{queued['id']}/matching")).json()["items"]
    results = {item["printer_id"]: item["result"] for item in explained}
    assert results[printer["id"]] in ("matched", "busy", "bed_not_clear")
    assert {r for p, r in results.items() if p != printer["id"]} <= {"not_target_printer"}

    async def printing() -> dict[str, Any] | None:
        await clear_bed(api, printer["id"])
        current = await job(api, queued["id"])
        return current if current["status"] == "printing" else None

    started = await wait_until(printing, 180, "the pinned job to print on its printer")
    assert started["printer_id"] == printer["id"] and started["started_at"]

    stopping = await api.post(f"/api/v1/jobs/{queued['id']}/cancel")
    assert stopping.status_code == 200, stopping.text
    cancelled = await wait_until(lambda: _status(api, queued["id"], "cancelled"), 120, "the printer to report the stop")
    assert cancelled["printer_id"] == printer["id"]
    assert (await api.post(f"/api/v1/jobs/{queued['id']}/cancel")).status_code == 409
    assert (await api.post(f"/api/v1/jobs/{queued['id']}/fail")).status_code == 409

    # The retried print only has to end: the simulator prints it in a few real seconds, not the 18 that three
    # hours take at the stack's time scale (the first print had to last long enough to be stopped).
    assert stack.sim is not None
    serial = stack.sim.printer(printer["serial"]).serial
    async with httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30, trust_env=False) as control:
        hurried = await control.post(f"/printers/{serial}/faults", json={"print_seconds": 2})
        assert hurried.status_code == 200, hurried.text
        try:
            retried = await api.post(f"/api/v1/jobs/{queued['id']}/retry")
            assert retried.status_code == 200 and retried.json()["status"] == "queued"

            async def completed() -> dict[str, Any] | None:
                await clear_bed(api, printer["id"])
                return await _status(api, queued["id"], "completed")

            await wait_until(completed, 600, "the retried job to complete", interval=0.25)
        finally:
            await control.post(f"/printers/{serial}/faults", json={"print_seconds": None})
    rejected = await api.post(f"/api/v1/jobs/{queued['id']}/fail")
    assert rejected.status_code == 200 and rejected.json()["status"] == "failed"
    again = await api.post(f"/api/v1/jobs/{queued['id']}/retry")
    assert again.status_code == 200 and again.json()["status"] == "queued"
    patched = await api.patch(f"/api/v1/jobs/{queued['id']}", json={"priority": "low"})
    assert patched.status_code == 200 and patched.json()["priority"] == "low"
    cancelled_order = await api.post(f"/api/v1/orders/{order_id}/cancel")
    assert cancelled_order.status_code == 200, cancelled_order.text


async def _status(api: httpx.AsyncClient, job_id: str, status: str) -> dict[str, Any] | None:
    current = await job(api, job_id)
    return current if current["status"] == status else None


async def test_materials_waiting_against_materials_loaded(api: httpx.AsyncClient) -> None:
    reply = await api.get("/api/v1/queue/materials")
    assert reply.status_code == 200, reply.text
    for item in reply.json()["items"]:
        assert set(item) >= {"type", "color", "jobs_waiting", "grams_waiting", "printers_loaded"}
        assert item["jobs_waiting"] >= 1 and isinstance(item["printers_loaded"], list)
