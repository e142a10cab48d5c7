"""Orders through the API gateway: validation, SKU PARAMs, job counting, search, customers, close and
optimistic concurrency. Needs no printing; every name is unique so a shared stack does not matter."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from .sliced_files import gcode_3mf

pytestmark = pytest.mark.integration

Wait = Any

BOX_SCAD = """// Edge length in mm
size = 20; // [10:50]
// Surface finish
finish = "matte"; // [matte, gloss]
module box() { cube(size); }
box();
"""


async def upload(api: httpx.AsyncClient, filename: str, content: bytes, material: str = "PLA") -> dict[str, Any]:
    reply = await api.post(
        "/api/v1/parts",
        data={"name": f"part {uuid.uuid4().hex[:6]}", "material_type": material},
        files={"file": (filename, content)},
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def new_sku(api: httpx.AsyncClient, parts: list[dict[str, Any]]) -> dict[str, Any]:
    reply = await api.post(
        "/api/v1/skus", json={"sku": f"IT-{uuid.uuid4().hex[:10]}", "name": "Integration SKU", "parts": parts}
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.fixture
async def box_sku(api: httpx.AsyncClient) -> dict[str, Any]:
    """A SKU of two parts: a customizable box (SKU PARAMs size and finish, 2 per unit) and a lid."""
    box = await upload(api, "box.scad", BOX_SCAD.encode())
    lid = await upload(api, "lid.gcode.3mf", gcode_3mf(minutes=5, grams=3.5, filament="PLA"))
    return await new_sku(
        api,
        [
            {"part_id": box["id"], "quantity": 2, "sku_params": ["size", "finish"]},
            {"part_id": lid["id"], "quantity": 1},
        ],
    )


async def create_order(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("order_number", f"IT-{uuid.uuid4().hex[:8]}")
    reply = await api.post("/api/v1/orders", json=body)
    assert reply.status_code == 201, reply.text
    order: dict[str, Any] = reply.json()
    return order


async def ids(api: httpx.AsyncClient, **params: Any) -> list[str]:
    reply = await api.get("/api/v1/orders", params=params)
    assert reply.status_code == 200, reply.text
    return [o["id"] for o in reply.json()["items"]]


async def test_an_order_made_right_after_its_sku_counts_jobs_and_defaults_parameters(
    api: httpx.AsyncClient, box_sku: dict[str, Any]
) -> None:
    order = await create_order(api, line_items=[{"sku_id": box_sku["id"], "quantity": 2, "parameters": {"size": 30}}])
    assert box_sku["jobs_per_unit"] == 3
    assert order["job_count"] == 6
    [line] = order["line_items"]
    assert line["parameters"] == {"size": 30, "finish": "matte"}
    assert (line["sku"], line["job_count"]) == (box_sku["sku"], 6)
    assert order["sku_breakdown"] == [
        {"sku_id": box_sku["id"], "sku": box_sku["sku"], "quantity": 2, "jobs_per_unit": 3, "job_count": 6}
    ]
    assert (order["status"], order["is_complete"], order["print_revision"]) == ("open", False, 0)
    fetched = await api.get(f"/api/v1/orders/{order['id']}")
    assert fetched.headers["etag"] == f'"{fetched.json()["revision"]}"'


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"size": 99}, "parameters.size"),
        ({"size": "big"}, "parameters.size"),
        ({"finish": "shiny"}, "parameters.finish"),
        ({"colour": "red"}, "parameters.colour"),
    ],
)
async def test_a_parameter_the_sku_refuses_is_422_naming_it(
    api: httpx.AsyncClient, box_sku: dict[str, Any], parameters: dict[str, Any], field: str
) -> None:
    order = await create_order(api)
    reply = await api.post(
        f"/api/v1/orders/{order['id']}/line-items",
        json={"sku_id": box_sku["id"], "quantity": 1, "parameters": parameters},
    )
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"order_number": ""}, "order_number"),
        ({"order_number": "X", "customer_email": "not-an-email"}, "customer_email"),
        ({"order_number": "X", "fulfillment_date": "tomorrow"}, "fulfillment_date"),
        ({"order_number": "X", "line_items": [{"sku_id": "x", "quantity": 0}]}, "line_items[0].quantity"),
        ({"order_number": "X", "line_items": [{"sku_id": str(uuid.uuid4()), "quantity": 1}]}, "line_items[0].sku_id"),
    ],
)
async def test_bad_input_is_422_naming_the_field(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    reply = await api.post("/api/v1/orders", json=body)
    assert reply.status_code == 422, reply.text
    assert field in [e["field"] for e in reply.json()["errors"]]


async def test_line_item_changes_show_at_once_in_counts_and_materials(
    api: httpx.AsyncClient, box_sku: dict[str, Any]
) -> None:
    order = await create_order(api, line_items=[{"sku_id": box_sku["id"], "quantity": 1}])
    added = await api.post(f"/api/v1/orders/{order['id']}/line-items", json={"sku_id": box_sku["id"], "quantity": 4})
    assert added.status_code == 201, added.text
    assert added.json()["job_count"] == 15
    second = added.json()["line_items"][1]["id"]
    changed = await api.patch(
        f"/api/v1/orders/{order['id']}/line-items/{second}", json={"quantity": 2, "parameters": {"finish": "gloss"}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["job_count"] == 9
    assert changed.json()["line_items"][1]["parameters"] == {"size": 20, "finish": "gloss"}
    removed = await api.delete(f"/api/v1/orders/{order['id']}/line-items/{second}")
    assert removed.status_code == 200, removed.text
    assert removed.json()["job_count"] == 3
    assert removed.json()["sku_breakdown"][0]["quantity"] == 1
    missing = await api.delete(f"/api/v1/orders/{order['id']}/line-items/{uuid.uuid4()}")
    assert missing.status_code == 404


async def test_a_stale_if_match_is_412_and_a_fresh_one_applies(api: httpx.AsyncClient) -> None:
    order = await create_order(api)
    etag = f'"{order["revision"]}"'
    first = await api.patch(f"/api/v1/orders/{order['id']}", json={"notes": "one"}, headers={"If-Match": etag})
    assert first.status_code == 200, first.text
    stale = await api.patch(f"/api/v1/orders/{order['id']}", json={"notes": "two"}, headers={"If-Match": etag})
    assert stale.status_code == 412, stale.text
    fresh = await api.patch(
        f"/api/v1/orders/{order['id']}", json={"notes": "two"}, headers={"If-Match": first.headers["etag"]}
    )
    assert fresh.status_code == 200 and fresh.json()["notes"] == "two"


async def test_order_numbers_keep_special_characters_and_search_matches_them_literally(
    api: httpx.AsyncClient,
) -> None:
    tag = uuid.uuid4().hex[:6]
    numbers = [f"{tag}%_\\ Ä#1", f"{tag}%x", f"{tag}_y", f"{tag}\\z", f"{tag.upper()}-plain"]
    made = {n: (await create_order(api, order_number=n))["id"] for n in numbers}
    again = await create_order(api, order_number=numbers[0])
    assert again["order_number"] == numbers[0] and again["id"] != made[numbers[0]]
    assert set(await ids(api, q=f"{tag}%")) == {made[numbers[0]], made[numbers[1]], again["id"]}
    assert set(await ids(api, q=f"{tag}_")) == {made[numbers[2]]}
    assert set(await ids(api, q=f"{tag}\\")) == {made[numbers[3]]}
    assert set(await ids(api, q=tag.upper())) == set(made.values()) | {again["id"]}
    assert await ids(api, q=f"{tag}%_\\ ä#1") == [again["id"], made[numbers[0]]]
    assert await ids(api, q=f"x{tag}") == []


async def test_filters_sorting_and_cursor_pages(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:6]
    email = f"{tag}@example.com"
    dates = ["2031-03-05", "2031-03-01", None, "2031-03-09"]
    made = [
        await create_order(
            api, order_number=f"{tag}-{i}", customer_name=f"Ada {tag}", customer_email=email, fulfillment_date=d
        )
        for i, d in enumerate(dates)
    ]
    await create_order(api, order_number=f"{tag}-other", customer_name="Someone Else")
    assert set(await ids(api, customer=email)) == {o["id"] for o in made}
    assert set(await ids(api, customer=f"ada {tag}")) == {o["id"] for o in made}
    by_date = await ids(api, q=tag, customer=email, sort="fulfillment_date")
    assert by_date == [made[1]["id"], made[0]["id"], made[3]["id"], made[2]["id"]]
    assert await ids(
        api, q=tag, fulfillment_from="2031-03-02", fulfillment_to="2031-03-09", sort="-fulfillment_date"
    ) == [
        made[3]["id"],
        made[0]["id"],
    ]
    assert await ids(api, q=tag, sort="-order_number", customer=email) == [o["id"] for o in reversed(made)]
    assert await ids(api, q=tag, status="open", sort="created_at") == [o["id"] for o in made] + [
        (await ids(api, q=f"{tag}-other"))[0]
    ]
    assert await ids(api, q=tag, status="completed") == []
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"q": tag, "limit": 2, "sort": "-created_at"}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/api/v1/orders", params=params)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    bad = await api.get("/api/v1/orders", params={"sort": "sideways"})
    assert bad.status_code == 422


async def test_customers_list_everyone_who_ordered(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:6]
    email = f"{tag}@shop.example"
    await create_order(api, customer_name="Grace", customer_email=email)
    cancelled = await create_order(api, customer_name="Grace H.", customer_email=email.upper())
    assert (await api.post(f"/api/v1/orders/{cancelled['id']}/cancel")).status_code == 200
    reply = await api.get("/api/v1/customers", params={"q": tag})
    assert reply.status_code == 200, reply.text
    [customer] = reply.json()["items"]
    assert customer["orders"] == 2 and customer["open_orders"] == 1
    assert customer["name"] == "Grace H." and customer["email"].lower() == email


async def test_close_only_complete_or_cancelled_then_read_only_and_hidden(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    open_order = await create_order(api, order_number=f"{tag}-open")
    done = await create_order(api, order_number=f"{tag}-cancelled")
    refused = await api.post(f"/api/v1/orders/{open_order['id']}/close")
    assert refused.status_code == 409 and refused.json()["detail"]
    assert (await api.post(f"/api/v1/orders/{done['id']}/cancel")).status_code == 200
    bulk = await api.post("/api/v1/orders/close", json={"order_ids": [done["id"], open_order["id"]]})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["closed"] == [done["id"]]
    assert [r["id"] for r in bulk.json()["rejected"]] == [open_order["id"]]
    assert (await api.get(f"/api/v1/orders/{done['id']}")).json()["status"] == "closed"
    assert await ids(api, q=tag) == [open_order["id"]]
    assert set(await ids(api, q=tag, include_closed="true")) == {open_order["id"], done["id"]}
    for method, path, body in [
        ("PATCH", "", {"notes": "late"}),
        ("POST", "/line-items", {"sku_id": "x", "quantity": 1}),
        ("POST", "/print-jobs", {}),
        ("POST", "/cancel", None),
    ]:
        reply = await api.request(method, f"/api/v1/orders/{done['id']}{path}", json=body)
        assert reply.status_code == 409, (path, reply.text)
