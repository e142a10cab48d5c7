"""One order cannot ask for an unbounded number of print jobs: every job becomes a queue row and a
line in a message, so 10,000 line items x 1,000,000 copies is a denial of service, not a sale. The
orders service caps line items per order, copies per line item and jobs per order (ORDER_MAX_JOBS,
default 100,000) with a 422 naming the field, and stores nothing of a refused request."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

TRIANGLE_STL = b"""solid t
facet normal 0 0 1
outer loop
vertex 0 0 0
vertex 10 0 0
vertex 0 10 0
endloop
endfacet
endsolid t
"""


@pytest.fixture
async def sku(api: httpx.AsyncClient) -> dict[str, Any]:
    """A SKU of one part: one print job per unit."""
    part = await api.post(
        "/api/v1/parts",
        data={"name": f"sec part {uuid.uuid4().hex[:6]}", "material_type": "PLA"},
        files={"file": ("triangle.stl", TRIANGLE_STL)},
    )
    assert part.status_code == 201, part.text
    reply = await api.post(
        "/api/v1/skus",
        json={
            "sku": f"SEC-{uuid.uuid4().hex[:10]}",
            "name": "Security SKU",
            "parts": [{"part_id": part.json()["id"], "quantity": 1}],
        },
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def problem(reply: httpx.Response) -> tuple[list[str], str]:
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json"), reply.text
    body = reply.json()
    return [e["field"] for e in body["errors"]], body["detail"]


async def orders_numbered(api: httpx.AsyncClient, number: str) -> list[dict[str, Any]]:
    reply = await api.get("/api/v1/orders", params={"q": number, "include_closed": "true"})
    assert reply.status_code == 200, reply.text
    return [o for o in reply.json()["items"] if o["order_number"] == number]


async def test_ten_thousand_line_items_of_a_million_copies_are_refused(
    api: httpx.AsyncClient, sku: dict[str, Any]
) -> None:
    number = f"#SEC-{uuid.uuid4().hex[:8]}"
    body = {"order_number": number, "line_items": [{"sku_id": sku["id"], "quantity": 1_000_000}] * 10_000}

    fields, detail = problem(await api.post("/api/v1/orders", json=body))

    assert fields == ["line_items"]
    assert "at most 5000" in detail
    assert await orders_numbered(api, number) == []


async def test_a_line_item_of_a_million_copies_is_refused(api: httpx.AsyncClient, sku: dict[str, Any]) -> None:
    number = f"#SEC-{uuid.uuid4().hex[:8]}"
    body = {"order_number": number, "line_items": [{"sku_id": sku["id"], "quantity": 1_000_000}]}

    fields, detail = problem(await api.post("/api/v1/orders", json=body))

    assert fields == ["line_items[0].quantity"]
    assert "at most 100000" in detail
    assert await orders_numbered(api, number) == []


async def test_an_order_over_the_job_cap_is_refused_and_says_so(api: httpx.AsyncClient, sku: dict[str, Any]) -> None:
    number = f"#SEC-{uuid.uuid4().hex[:8]}"
    body = {"order_number": number, "line_items": [{"sku_id": sku["id"], "quantity": 60_000}] * 2}

    fields, detail = problem(await api.post("/api/v1/orders", json=body))

    assert fields == ["line_items"]
    assert "120000 print jobs" in detail and "at most 100000" in detail
    assert await orders_numbered(api, number) == []


async def test_growing_an_order_past_the_job_cap_is_refused_and_leaves_it_as_it_was(
    api: httpx.AsyncClient, sku: dict[str, Any]
) -> None:
    created = await api.post(
        "/api/v1/orders",
        json={
            "order_number": f"#SEC-{uuid.uuid4().hex[:8]}",
            "line_items": [{"sku_id": sku["id"], "quantity": 90_000}],
        },
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["job_count"] == 90_000

    refused_add = await api.post(
        f"/api/v1/orders/{order['id']}/line-items", json={"sku_id": sku["id"], "quantity": 20_000}
    )
    added = await api.post(f"/api/v1/orders/{order['id']}/line-items", json={"sku_id": sku["id"], "quantity": 5_000})
    assert added.status_code == 201, added.text
    grown = added.json()
    line_item_id = order["line_items"][0]["id"]
    refused_change = await api.patch(
        f"/api/v1/orders/{order['id']}/line-items/{line_item_id}", json={"quantity": 96_000}
    )

    assert problem(refused_add)[0] == ["line_items"]
    fields, detail = problem(refused_change)
    assert fields == ["line_items"] and "101000 print jobs" in detail
    after = (await api.get(f"/api/v1/orders/{order['id']}")).json()
    assert after["job_count"] == 95_000 and len(after["line_items"]) == 2
    assert after["revision"] == grown["revision"]
