"""An order printed on the simulated fleet: edited while some of its jobs print, sent again, and
completed only when the jobs of its current line items are done."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
LIVE = ("queued", "assigned", "printing", "paused", "completed", "failed")
PRINT_MINUTES = 120
"""Long enough (simulated) that jobs are still printing while the test edits the order."""
HURRIED_PRINT_SECONDS = 1.0
"""Real seconds a print takes once the edit is applied: what is left only has to complete."""


async def scarcest_material(api: httpx.AsyncClient) -> tuple[str, str, int]:
    """The (type, colour) of filament the fewest online printers hold, and how many hold it."""
    reply = await api.get("/api/v1/printers")
    assert reply.status_code == 200, reply.text
    holders: dict[tuple[str, str], set[str]] = {}
    for printer in reply.json()["items"]:
        if printer.get("online"):
            for material in printer.get("materials") or []:
                if material.get("type") and material.get("color"):
                    key = (material["type"].upper(), material["color"].upper())
                    holders.setdefault(key, set()).add(printer["id"])
    assert holders, "no online printer reports a loaded material"
    kind, color = min(sorted(holders), key=lambda k: len(holders[k]))
    return kind, color, len(holders[(kind, color)])


async def upload_slab(api: httpx.AsyncClient, kind: str, color: str) -> str:
    part = await api.post(
        "/api/v1/parts",
        data={"name": f"slab {uuid.uuid4().hex[:6]}", "material_type": kind, "material_color": color},
        files={"file": ("slab.gcode.3mf", gcode_3mf(minutes=PRINT_MINUTES, grams=4.0, filament=kind, color=color))},
    )
    assert part.status_code == 201, part.text
    assert part.json()["material"]["type"].upper() == kind
    part_id: str = part.json()["id"]
    return part_id


async def jobs_of(api: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    reply = await api.get("/api/v1/jobs", params={"order_id": order_id, "limit": 500})
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


async def clear_finished_beds(api: httpx.AsyncClient) -> None:
    """What an operator does: take the finished part off so the printer takes the next job."""
    for printer in (await api.get("/api/v1/printers")).json()["items"]:
        finished = printer.get("state") in ("finished", "idle") and not printer.get("current_job_id")
        if printer.get("bed_clear") is False and finished:
            await api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")


async def why_waiting(api: httpx.AsyncClient, order_id: str) -> str:
    """The queue's own account of why the order's first queued job has no printer."""
    waiting = [j for j in await jobs_of(api, order_id) if j["status"] == "queued"]
    if not waiting:
        return "no queued job"
    matching = await api.get(f"/api/v1/jobs/{waiting[0]['id']}/matching")
    printers = [
        {k: p.get(k) for k in ("name", "state", "online", "bed_clear", "current_job_id", "materials")}
        for p in (await api.get("/api/v1/printers")).json()["items"]
    ]
    loaded = (await api.get("/api/v1/queue/materials")).text
    return f"matching={matching.text} printers={printers} queue sees={loaded} material={waiting[0].get('material')}"


async def print_started(api: httpx.AsyncClient, order_id: str, wait_until: Wait, count: int) -> list[dict[str, Any]]:
    """Wait (clearing finished beds) until the order has `count` jobs and one of them prints."""

    async def started() -> list[dict[str, Any]] | None:
        await clear_finished_beds(api)
        jobs = await jobs_of(api, order_id)
        return jobs if len(jobs) == count and any(j["status"] == "printing" for j in jobs) else None

    try:
        found: list[dict[str, Any]] = await wait_until(started, 180, "a job of the order to print")
    except TimeoutError:
        pytest.fail(f"no job of the order started printing: {await why_waiting(api, order_id)}")
    return found


@asynccontextmanager
async def hurried_prints(stack: Stack, api: httpx.AsyncClient, kind: str, color: str) -> AsyncIterator[None]:
    """The printers holding the material start each print in a second (the simulator's `print_seconds`
    switch) instead of the file's time, and are put back after; a print already running keeps its time."""
    assert stack.sim is not None
    simulated = {p.serial for p in stack.sim.printers}
    serials = [
        printer["serial"]
        for printer in (await api.get("/api/v1/printers?limit=500")).json()["items"]
        if printer.get("serial") in simulated
        and any(
            (m.get("type") or "").upper() == kind and (m.get("color") or "").upper() == color
            for m in printer.get("materials") or []
        )
    ]
    async with httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30, trust_env=False) as control:
        try:
            for serial in serials:
                hurried = await control.post(
                    f"/printers/{serial}/faults", json={"print_seconds": HURRIED_PRINT_SECONDS}
                )
                assert hurried.status_code == 200, hurried.text
            yield
        finally:
            for serial in serials:
                await control.post(f"/printers/{serial}/faults", json={"print_seconds": None})


async def order_of(api: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    reply = await api.get(f"/api/v1/orders/{order_id}")
    assert reply.status_code == 200, reply.text
    order: dict[str, Any] = reply.json()
    return order


async def test_edit_while_printing_then_send_again_touches_only_what_changed(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait
) -> None:
    kind, color, holders = await scarcest_material(api)
    part_id = await upload_slab(api, kind, color)
    sku = await api.post(
        "/api/v1/skus",
        json={
            "sku": f"IT-{uuid.uuid4().hex[:10]}",
            "name": "Slab",
            "parts": [{"part_id": part_id, "quantity": 1}],
        },
    )
    assert sku.status_code == 201, sku.text
    sku_id = sku.json()["id"]
    created = await api.post(
        "/api/v1/orders",
        json={
            "order_number": f"EDIT-{uuid.uuid4().hex[:6]}",
            "line_items": [
                {"sku_id": sku_id, "quantity": holders},
                {"sku_id": sku_id, "quantity": 1},
                {"sku_id": sku_id, "quantity": 1},
            ],
        },
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    first, kept, removed = (li["id"] for li in created.json()["line_items"])

    sent = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json={"assignment": {"mode": "next_available"}})
    assert sent.status_code == 202 and sent.json()["print_revision"] == 1

    await print_started(api, order_id, wait_until, holders + 2)

    async def order_printing() -> dict[str, Any] | None:
        current = await order_of(api, order_id)
        return current if current["status"] == "printing" else None

    order = await wait_until(order_printing, 30, "the order to show the queue's report")
    assert not order["is_complete"] and order["jobs"]["printing"] >= 1

    added = await api.post(f"/api/v1/orders/{order_id}/line-items", json={"sku_id": sku_id, "quantity": 1})
    assert added.status_code == 201, added.text
    new = added.json()["line_items"][-1]["id"]
    dropped = await api.delete(f"/api/v1/orders/{order_id}/line-items/{removed}")
    assert dropped.status_code == 200 and dropped.json()["job_count"] == holders + 2
    before = {j["id"]: j for j in await jobs_of(api, order_id)}
    resent = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json={})
    assert resent.status_code == 202 and resent.json()["print_revision"] == 2

    async def reconciled() -> list[dict[str, Any]] | None:
        jobs = await jobs_of(api, order_id)
        has_new = any(j["line_item_id"] == new for j in jobs)
        removed_queued_gone = all(
            j["status"] == "cancelled"
            for j in jobs
            if j["line_item_id"] == removed and before.get(j["id"], {}).get("status") == "queued"
        )
        return jobs if has_new and removed_queued_gone else None

    after = await wait_until(reconciled, 60, "the queue to apply the second print request")
    by_id = {j["id"]: j for j in after}
    for job_id, job in before.items():
        now = by_id[job_id]
        if job["line_item_id"] in (first, kept):
            assert now["status"] != "cancelled", f"a job of a kept line item was cancelled: {now}"
        if job["status"] in ("printing", "paused", "completed"):
            assert now["status"] != "cancelled", f"a job that had started was cancelled: {now}"
    live_before = {i for i, j in before.items() if j["line_item_id"] in (first, kept) and j["status"] in LIVE}
    live_after = {j["id"] for j in after if j["line_item_id"] in (first, kept) and j["status"] in LIVE}
    assert live_after == live_before, "jobs of unchanged line items must be kept, not replaced"
    assert len([j for j in after if j["line_item_id"] == new]) == 1

    wanted = {first, kept, new}

    async def all_done() -> dict[str, Any] | None:
        await clear_finished_beds(api)
        # The order first: if it claims completion, every job read after must be complete (read the other
        # way round, the last job may complete between the two reads).
        current = await order_of(api, order_id)
        jobs = [j for j in await jobs_of(api, order_id) if j["line_item_id"] in wanted and j["status"] != "cancelled"]
        finished = len(jobs) == holders + 2 and all(j["status"] == "completed" for j in jobs)
        if current["is_complete"]:
            assert finished, f"the order claims completion while jobs remain: {[j['status'] for j in jobs]}"
        return current if finished and current["is_complete"] else None

    # The edit is applied while the first print runs; the rest of the order only has to print.
    async with hurried_prints(stack, api, kind, color):
        done = await wait_until(all_done, 600, "every remaining job to complete", interval=0.25)
    assert done["status"] == "completed"
    assert done["jobs"]["completed"] == holders + 2
    assert {li["id"]: li["jobs"]["completed"] for li in done["line_items"]} == {first: holders, kept: 1, new: 1}
    closed = await api.post(f"/api/v1/orders/{order_id}/close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


async def test_cancel_drops_queued_jobs_and_lets_printing_ones_finish(api: httpx.AsyncClient, wait_until: Wait) -> None:
    kind, color, holders = await scarcest_material(api)
    part_id = await upload_slab(api, kind, color)
    sku = await api.post(
        "/api/v1/skus",
        json={
            "sku": f"IT-{uuid.uuid4().hex[:10]}",
            "name": "Tile",
            "parts": [{"part_id": part_id, "quantity": 1}],
        },
    )
    assert sku.status_code == 201, sku.text
    created = await api.post(
        "/api/v1/orders",
        json={
            "order_number": f"CAN-{uuid.uuid4().hex[:6]}",
            "line_items": [{"sku_id": sku.json()["id"], "quantity": holders + 2}],
        },
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    assert (await api.post(f"/api/v1/orders/{order_id}/print-jobs")).status_code == 202

    await print_started(api, order_id, wait_until, holders + 2)
    cancelled = await api.post(f"/api/v1/orders/{order_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    async def settled() -> list[dict[str, Any]] | None:
        jobs = await jobs_of(api, order_id)
        return jobs if not any(j["status"] == "queued" for j in jobs) else None

    jobs = await wait_until(settled, 60, "queued jobs to be cancelled")
    assert any(j["status"] == "cancelled" for j in jobs)
    assert any(j["status"] in ("assigned", "printing", "paused", "completed") for j in jobs)
    closed = await api.post(f"/api/v1/orders/{order_id}/close")
    assert closed.status_code == 200, closed.text
    refused = await api.post(f"/api/v1/orders/{order_id}/print-jobs")
    assert refused.status_code == 409
