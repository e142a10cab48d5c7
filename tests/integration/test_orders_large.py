"""An order of 2,000 line items and 20,000 jobs: it is created, read, sent (the request travels by claim
check), counted back by the queue, sent again without changes (nothing added or cancelled) and cancelled."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
LINES, UNITS, PARTS_PER_UNIT = 2000, 5, 2
JOBS = LINES * UNITS * PARTS_PER_UNIT
NOWHERE = {"mode": "tags", "tags": [f"no-printer-has-{uuid.uuid4().hex[:8]}"]}
"""Keeps the 20,000 jobs queued: no printer carries this tag."""

GCODE = (
    b"; generated for the 20,000-job test\n"
    b"; filament_type = PLA\n"
    b"; estimated printing time (normal mode) = 2m 0s\n"
    b"G28\nG1 X5 Y5\n"
)


async def order_of(api: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    reply = await api.get(f"/api/v1/orders/{order_id}")
    assert reply.status_code == 200, reply.text
    order: dict[str, Any] = reply.json()
    return order


async def test_a_20000_job_order_round_trips(api: httpx.AsyncClient, wait_until: Wait) -> None:
    part = await api.post(
        "/api/v1/parts",
        data={"name": f"bulk {uuid.uuid4().hex[:6]}", "material_type": "PLA"},
        files={"file": ("bulk.gcode", GCODE)},
    )
    assert part.status_code == 201, part.text
    sku = await api.post(
        "/api/v1/skus",
        json={
            "sku": f"IT-BULK-{uuid.uuid4().hex[:8]}",
            "name": "Bulk",
            "parts": [{"part_id": part.json()["id"], "quantity": PARTS_PER_UNIT}],
        },
    )
    assert sku.status_code == 201, sku.text
    lines = [{"sku_id": sku.json()["id"], "quantity": UNITS} for _ in range(LINES)]
    created = await api.post(
        "/api/v1/orders", json={"order_number": f"BULK-{uuid.uuid4().hex[:6]}", "line_items": lines}
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["job_count"] == JOBS and len(order["line_items"]) == LINES
    assert order["sku_breakdown"][0]["quantity"] == LINES * UNITS

    sent = await api.post(f"/api/v1/orders/{order['id']}/print-jobs", json={"assignment": NOWHERE})
    assert sent.status_code == 202, sent.text

    async def all_queued() -> dict[str, Any] | None:
        current = await order_of(api, order["id"])
        return current if current["jobs"]["queued"] == JOBS else None

    queued = await wait_until(all_queued, 300, "20,000 jobs to be queued", interval=0.5)
    assert queued["status"] == "queued" and queued["jobs"]["total"] == JOBS
    assert all(li["jobs"]["queued"] == UNITS * PARTS_PER_UNIT for li in queued["line_items"])

    again = await api.post(f"/api/v1/orders/{order['id']}/print-jobs", json={"assignment": NOWHERE})
    assert again.status_code == 202 and again.json()["print_revision"] == 2

    async def caught_up() -> dict[str, Any] | None:
        current = await order_of(api, order["id"])
        return current if current["queue_print_revision"] >= 2 else None

    unchanged = await wait_until(caught_up, 120, "the queue to apply the repeated request", interval=0.5)
    assert unchanged["jobs"] == queued["jobs"], "sending an unchanged order again must add and cancel nothing"

    cancelled = await api.post(f"/api/v1/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    async def dropped() -> dict[str, Any] | None:
        current = await order_of(api, order["id"])
        return current if current["jobs"]["cancelled"] == JOBS else None

    await wait_until(dropped, 300, "the queue to cancel the 20,000 queued jobs", interval=0.5)
