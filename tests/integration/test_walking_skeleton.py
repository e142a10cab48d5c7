"""Issue 2's flow through the API gateway, every service a separate process on real NATS JetStream,
PostgreSQL and the wire-level printer simulator: a sliced part becomes an order whose four jobs are
printed only by printers holding its material, the order completes and is closed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import DeliverPolicy

from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]


async def items(api: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    reply = await api.get(path)
    assert reply.status_code == 200, reply.text
    body: list[dict[str, Any]] = reply.json()["items"]
    return body


async def test_one_order_is_printed_end_to_end(stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> None:
    health = (await api.get("/api/v1/health")).json()
    assert health["status"] == "ok", health
    assert {"skus", "orders", "queue", "printer-gateway"} <= set(health["services"]), health

    printers = await wait_until(lambda: _online_printers(api), 60, "the simulated fleet to be online with materials")
    holders: dict[str, set[str]] = {}
    for p in printers:
        for m in p["materials"]:
            holders.setdefault(m["type"].upper(), set()).add(p["id"])
    material = min(holders, key=lambda t: len(holders[t]))

    part = await api.post(
        "/api/v1/parts",
        files={"file": ("widget.gcode.3mf", gcode_3mf(filament=material), "application/octet-stream")},
        data={"name": f"Widget {uuid.uuid4().hex[:6]}", "material_type": material},
    )
    assert part.status_code == 201, part.text
    assert part.json()["kind"] == "gcode.3mf"

    sku = await api.post(
        "/api/v1/skus",
        json={
            "sku": f"IT-{uuid.uuid4().hex[:8]}",
            "name": "Widget pair",
            "parts": [{"part_id": part.json()["id"], "quantity": 2}],
        },
    )
    assert sku.status_code == 201, sku.text
    assert sku.json()["jobs_per_unit"] == 2

    number = f"IT-{uuid.uuid4().hex[:6]}"
    order = await api.post(
        "/api/v1/orders",
        json={"order_number": number, "line_items": [{"sku_id": sku.json()["id"], "quantity": 2}]},
    )
    assert order.status_code == 201, order.text
    assert order.json()["job_count"] == 4 and order.json()["status"] == "open"
    order_id = order.json()["id"]

    nc = await nats.connect(stack.nats_url)
    try:
        summaries = await nc.jetstream().subscribe(
            "queue.v1.order.jobs_summarized", deliver_policy=DeliverPolicy.NEW, ordered_consumer=True
        )
        for _ in range(2):
            click = await api.post(
                f"/api/v1/orders/{order_id}/print-jobs", json={"assignment": {"mode": "next_available"}}
            )
            assert click.status_code == 202, click.text
        revision = click.json()["print_revision"]

        async def second_click_reconciled() -> bool:
            try:
                msg = await summaries.next_msg(timeout=5)
            except nats.errors.TimeoutError:
                return False
            data = json.loads(msg.data)["data"]
            return data["order_id"] == order_id and data["print_revision"] >= revision

        await wait_until(second_click_reconciled, 60, "the queue to apply the second click")
    finally:
        await nc.close()

    jobs = await items(api, f"/api/v1/jobs?order_id={order_id}&limit=500")
    live = [j for j in jobs if j["status"] != "cancelled"]
    assert len(live) == 4, "two clicks on an unchanged order make 4 jobs, not 8"
    assert len({(j["line_item_id"], j["part_id"], j["copy"]) for j in live}) == 4, "one live job per identity"
    assert all(j["order_number"] == number for j in jobs)

    used: set[str] = set()

    async def all_completed() -> bool:
        for p in await items(api, "/api/v1/printers?limit=500"):
            if p["bed_clear"] is False and p["state"] in ("finished", "idle") and not p["current_job_id"]:
                await api.post(f"/api/v1/printers/{p['id']}/bed-cleared")
        current = await items(api, f"/api/v1/jobs?order_id={order_id}&limit=500")
        used.update(j["printer_id"] for j in current if j["printer_id"])
        return all(j["status"] == "completed" for j in current if j["status"] != "cancelled")

    await wait_until(all_completed, 240, "all four jobs to be printed")
    assert used and used <= holders[material], f"jobs went to printers without {material}"

    done = await wait_until(lambda: _order_if(api, order_id, lambda o: o["is_complete"]), 30, "the green check")
    assert done["status"] == "completed" and done["jobs"]["completed"] == 4

    closed = await api.post(f"/api/v1/orders/{order_id}/close")
    assert closed.status_code in (200, 204), closed.text
    assert (await api.get(f"/api/v1/orders/{order_id}")).json()["status"] == "closed"
    assert order_id not in [o["id"] for o in await items(api, f"/api/v1/orders?q={number}")]
    assert order_id in [o["id"] for o in await items(api, f"/api/v1/orders?q={number}&include_closed=true")]
    assert (await api.patch(f"/api/v1/orders/{order_id}", json={"notes": "late change"})).status_code == 409


async def _online_printers(api: httpx.AsyncClient) -> list[dict[str, Any]] | None:
    printers = await items(api, "/api/v1/printers?limit=500")
    online = [p for p in printers if p["online"] and p["materials"]]
    return printers if len(online) >= 4 else None


async def _order_if(
    api: httpx.AsyncClient, order_id: str, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    order: dict[str, Any] = (await api.get(f"/api/v1/orders/{order_id}")).json()
    return order if check(order) else None
