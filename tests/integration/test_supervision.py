"""Issue 12: a farm that heals. Every kind of process the stack runs is killed with SIGKILL in turn while
an order's jobs are queued and printing; each time `/api/v1/health` shows `degraded` (or the gateway is
gone) while it is down and `ok` again within 30 s, and afterwards every job of the order completes."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
HEAL_SECONDS = 30
"""The acceptance: healthy again within 30 s on a machine doing only this."""
COPIES = 3


def heal_deadline() -> float:
    """30 s, stretched by how far other work oversubscribes the cores (shared developer machines): a
    restart is a CPU-bound Python start-up. CI runs alone, so there it is the plain 30 s."""
    return HEAL_SECONDS * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


async def _order_of_copies(api: httpx.AsyncClient) -> str:
    part = await api.post(
        "/api/v1/parts",
        files={"file": ("bracket.gcode.3mf", gcode_3mf(minutes=120, grams=4.0, filament="PLA"))},
        data={"name": f"Bracket {uuid.uuid4().hex[:6]}", "material_type": "PLA"},
    )
    assert part.status_code == 201, part.text
    sku = await api.post(
        "/api/v1/skus",
        json={"sku": f"HEAL-{uuid.uuid4().hex[:8]}", "name": "Bracket",
              "parts": [{"part_id": part.json()["id"], "quantity": 1}]},
    )
    assert sku.status_code == 201, sku.text
    order = await api.post(
        "/api/v1/orders",
        json={"order_number": f"HEAL-{uuid.uuid4().hex[:6]}",
              "line_items": [{"sku_id": sku.json()["id"], "quantity": COPIES}]},
    )
    assert order.status_code == 201, order.text
    order_id: str = order.json()["id"]
    click = await api.post(f"/api/v1/orders/{order_id}/print-jobs", json={"assignment": {"mode": "next_available"}})
    assert click.status_code == 202, click.text
    return order_id


async def _jobs(api: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    reply = await api.get(f"/api/v1/jobs?order_id={order_id}&limit=500")
    if reply.status_code != 200:
        return []
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


async def _health(api: httpx.AsyncClient) -> dict[str, Any] | None:
    """The health document, or None while the gateway itself does not answer."""
    try:
        reply = await api.get("/api/v1/health", timeout=5)
    except httpx.TransportError:
        return None
    body: dict[str, Any] = reply.json()
    return body


async def _kill_and_heal(stack: Stack, api: httpx.AsyncClient, wait_until: Wait, name: str) -> float:
    """SIGKILL one child as an outsider would (`kill -9`), see the outage, and time the way back to ok."""
    process = next(p for p in stack.processes() if p.name == name)
    assert process.pid is not None
    deadline = heal_deadline()
    killed_at = time.monotonic()
    os.kill(process.pid, signal.SIGKILL)

    async def outage_seen() -> bool:
        health = await _health(api)
        return health is None or health["status"] == "degraded"

    await wait_until(outage_seen, deadline, f"/api/v1/health to show {name} down")

    async def healed() -> bool:
        health = await _health(api)
        return health is not None and health["status"] == "ok" and stack.supervisor.degraded == []

    what = f"the farm to be healthy again after {name} was killed (deadline {deadline:.0f}s)"
    await wait_until(healed, deadline - (time.monotonic() - killed_at), what, interval=0.2)
    assert stack.supervisor.status(name).last_exit == "killed by SIGKILL"
    return time.monotonic() - killed_at


@pytest.mark.timeout(900)  # seven kills and the prints: about a minute and a half on idle cores
async def test_every_kind_of_process_killed_with_sigkill_heals_within_30s_and_no_job_is_lost(
    stack: Stack, api: httpx.AsyncClient, wait_until: Wait
) -> None:
    assert (await _health(api)) == {"status": "ok", "services": {
        "skus": "ok", "orders": "ok", "queue": "ok", "printer-gateway": "ok", "slicer": "ok", "nats": "ok", "simulator": "ok",
    }}
    order_id = await _order_of_copies(api)
    jobs = await wait_until(
        lambda: _if_count(_jobs(api, order_id), COPIES), 60, f"the order's {COPIES} jobs to be queued"
    )
    job_ids = {j["id"] for j in jobs}

    healed_in = {}
    for name in ("orders-1", "queue-1", "nats", "postgres", "simulator", "printer_gateway-1", "api_gateway-1"):
        healed_in[name] = await _kill_and_heal(stack, api, wait_until, name)
    print("healed in", {name: f"{seconds:.1f}s" for name, seconds in healed_in.items()})

    async def all_printed() -> bool:
        jobs = await _jobs(api, order_id)
        assert {j["id"] for j in jobs} <= job_ids, "no job appears twice"
        for job in jobs:  # what an operator does: clear beds, retry prints the killed simulator aborted
            if job["status"] == "failed":
                await api.post(f"/api/v1/jobs/{job['id']}/retry")
        printers = (await api.get("/api/v1/printers?limit=500")).json()["items"]
        for printer in printers:
            if printer["online"] and not printer["bed_clear"] and not printer["current_job_id"]:
                await api.post(f"/api/v1/printers/{printer['id']}/bed-cleared")
        return {j["id"] for j in jobs} == job_ids and all(j["status"] == "completed" for j in jobs)

    await wait_until(all_printed, 120, "every job of the order to be printed", interval=0.5)
    restarts = {name: stack.supervisor.status(name).restarts for name in healed_in}
    assert all(count >= 1 for count in restarts.values()), restarts


async def _if_count(value: Awaitable[list[dict[str, Any]]], count: int) -> list[dict[str, Any]] | None:
    items = await value
    return items if len(items) == count else None
