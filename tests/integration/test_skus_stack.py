"""Parts and SKUs through the API gateway with every service running: an order line can use a SKU
created a moment earlier, open orders hold their SKUs, and editing a SKU changes only the next
print-jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import nats
import pytest
from nats.js import JetStreamContext

from contracts.envelope import Envelope
from devstack import Stack

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

WaitUntil = Callable[..., Awaitable[Any]]


@pytest.fixture
async def js(stack: Stack) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(stack.nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def new_part(api: httpx.AsyncClient, name: str, grams: float = 4.0) -> dict[str, Any]:
    r = await api.post(
        "/api/v1/parts",
        data={"name": name, "material_type": "PLA"},
        files={"file": (f"{name}.gcode.3mf", gcode_3mf(minutes=10, grams=grams, filament="PLA", color="#FFFFFF"))},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def new_sku(api: httpx.AsyncClient, code: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    r = await api.post("/api/v1/skus", json={"sku": code, "name": code, "parts": lines})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def order_changed_seq(js: JetStreamContext, order_id: str, status: str) -> int | None:
    """Stream sequence of the latest OrderChanged saying `order_id` has `status`, if published yet."""
    sub = await js.subscribe("orders.v1.order.changed", ordered_consumer=True)
    found = None
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except TimeoutError:
                return found
            data = Envelope.model_validate_json(msg.data).data or {}
            if data.get("id") == order_id and data.get("status") == status:
                found = msg.metadata.sequence.stream
    finally:
        await sub.unsubscribe()


async def skus_saw_order(js: JetStreamContext, wait_until: WaitUntil, order_id: str, status: str) -> None:
    """Wait until the orders service published the order's state and the skus service applied it."""

    async def published() -> int | None:
        return await order_changed_seq(js, order_id, status)

    seq = await wait_until(published, 30, f"OrderChanged({status}) for {order_id}")

    async def applied() -> bool:
        info = await js.consumer_info("ORDERS", "skus__order_changed")
        return info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= seq

    await wait_until(applied, 30, "the skus service to apply it")


async def test_an_order_line_can_use_a_sku_created_a_moment_earlier(api: httpx.AsyncClient) -> None:
    part = await new_part(api, "moment-part")
    for n in range(5):
        sku = await new_sku(api, f"MOMENT-{n}", [{"part_id": part["id"], "quantity": 3}])
        r = await api.post(
            "/api/v1/orders",
            json={"order_number": f"M-{n}", "line_items": [{"sku_id": sku["id"], "quantity": 2}]},
        )
        assert r.status_code == 201, r.text
        line = r.json()["line_items"][0]
        assert line["sku_id"] == sku["id"] and line["sku"] == f"MOMENT-{n}"
        assert r.json()["job_count"] == 6


async def test_problem_details_pass_through_the_gateway(api: httpx.AsyncClient) -> None:
    part = await new_part(api, "held-part")
    sku = await new_sku(api, "HELD-1", [{"part_id": part["id"], "quantity": 1}])
    r = await api.delete(f"/api/v1/parts/{part['id']}")
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert "HELD-1" in r.json()["detail"]
    r = await api.post("/api/v1/skus", json={"sku": "held-1", "name": "again"})
    assert r.status_code == 409 and r.json()["existing"]["id"] == sku["id"]
    r = await api.post("/api/v1/skus", json={"sku": "X-1", "name": "x", "parts": [{"part_id": "nope", "quantity": 1}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parts[0].part_id"
    r = await api.post("/api/v1/parts", data={"name": "x", "material_type": "PLA"}, files={"file": ("x.stl", b"no")})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"


async def test_a_sku_used_by_an_open_order_cannot_be_deleted_until_the_order_is_cancelled(
    api: httpx.AsyncClient, js: JetStreamContext, wait_until: WaitUntil
) -> None:
    part = await new_part(api, "open-order-part")
    sku = await new_sku(api, "OPEN-1", [{"part_id": part["id"], "quantity": 1}])
    order = await api.post(
        "/api/v1/orders", json={"order_number": "OPEN-ORDER-1", "line_items": [{"sku_id": sku["id"], "quantity": 1}]}
    )
    assert order.status_code == 201, order.text
    await skus_saw_order(js, wait_until, order.json()["id"], "open")
    r = await api.delete(f"/api/v1/skus/{sku['id']}")
    assert r.status_code == 409 and "OPEN-ORDER-1" in r.json()["detail"]
    assert (await api.post(f"/api/v1/orders/{order.json()['id']}/cancel")).status_code in (200, 202)
    await skus_saw_order(js, wait_until, order.json()["id"], "cancelled")
    assert (await api.delete(f"/api/v1/skus/{sku['id']}")).status_code == 204


async def test_editing_a_sku_changes_only_the_next_print_jobs(api: httpx.AsyncClient, wait_until: WaitUntil) -> None:
    part = await new_part(api, "edit-part")
    sku = await new_sku(api, "EDIT-1", [{"part_id": part["id"], "quantity": 1}])
    order = (
        await api.post(
            "/api/v1/orders", json={"order_number": "EDIT-ORDER", "line_items": [{"sku_id": sku["id"], "quantity": 1}]}
        )
    ).json()
    assert (await api.post(f"/api/v1/orders/{order['id']}/print-jobs", json={})).status_code == 202

    async def jobs() -> list[dict[str, Any]]:
        r = await api.get("/api/v1/jobs", params={"order_id": order["id"]})
        return list(r.json()["items"])

    assert len(await wait_until(jobs, 30, "the first print job")) == 1
    r = await api.patch(f"/api/v1/skus/{sku['id']}", json={"parts": [{"part_id": part["id"], "quantity": 3}]})
    assert r.status_code == 200 and r.json()["jobs_per_unit"] == 3 and r.json()["revision"] == 2

    async def order_sees_new_sku() -> bool:
        got = (await api.get(f"/api/v1/orders/{order['id']}")).json()
        return bool(got["job_count"] == 3)

    await wait_until(order_sees_new_sku, 30, "the orders service to replicate the edited SKU")
    assert len(await jobs()) == 1, "jobs already sent keep their snapshot"
    assert (await api.post(f"/api/v1/orders/{order['id']}/print-jobs", json={})).status_code == 202

    async def three_jobs() -> bool:
        return len([j for j in await jobs() if j["status"] != "cancelled"]) == 3

    await wait_until(three_jobs, 30, "the next print-jobs to add the new copies")
