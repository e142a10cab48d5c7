"""The HTTP edge on the in-memory unit of work: status codes, problem details, ETag and If-Match."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from orders_fakes import InMemoryUnitOfWork

from orders.domain.model import Sku
from orders.entrypoints import api
from orders.service_layer.handlers import Deps
from orders.service_layer.unit_of_work import UnitOfWork
from servicekit.problems import install_problem_handlers

PART = {
    "part_id": "p1",
    "part_name": "Body",
    "quantity": 1,
    "material": {"type": "PLA"},
    "file": {"sha256": "a" * 64, "filename": "b.stl", "kind": "stl", "size_bytes": 1},
}
SKUS = {
    "ok": Sku("ok", "OK", "Printable", jobs_per_unit=1, parts=(PART,), revision=1),
    "empty": Sku("empty", "EMPTY", "No parts", jobs_per_unit=0, revision=1),
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    store = InMemoryUnitOfWork()
    store.committed_skus.rows.update(SKUS)
    counter = itertools.count(1)

    async def fetch(ids: list[str]) -> list[Sku]:
        return []

    deps = Deps(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC), ids=lambda: f"id-{next(counter)}", fetch_skus=fetch)
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(api.router(lambda: cast(UnitOfWork, store), deps))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://orders") as http:
        yield http


def fields(reply: httpx.Response) -> list[str]:
    assert reply.headers["content-type"].startswith("application/problem+json"), reply.text
    return [e["field"] for e in reply.json().get("errors", [])]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"order_number": "   "}, "order_number"),
        ({"order_number": "A", "customer_email": "bob@"}, "customer_email"),
        ({"order_number": "A", "line_items": [{"sku_id": "ok", "quantity": 0}]}, "line_items[0].quantity"),
        ({"order_number": "A", "line_items": [{"sku_id": "ok", "quantity": True}]}, "line_items[0].quantity"),
        ({"order_number": "A", "line_items": [{"sku_id": "nope", "quantity": 1}]}, "line_items[0].sku_id"),
        (
            {"order_number": "A", "line_items": [{"sku_id": "ok", "quantity": 1, "parameters": {"x": 1}}]},
            "line_items[0].parameters.x",
        ),
    ],
)
async def test_bad_orders_are_422_naming_the_field(client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    reply = await client.post("/api/v1/orders", json=body)
    assert reply.status_code == 422
    assert fields(reply) == [field]


async def test_create_then_edit_with_if_match(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/v1/orders", json={"order_number": " 50%_off\\ ", "customer_email": "Ann@Example.com"}
    )
    assert created.status_code == 201
    order = created.json()
    assert order["order_number"] == " 50%_off\\ " and order["customer_email"] == "Ann@example.com"
    assert created.headers["etag"] == '"1"' and created.headers["location"].endswith(order["id"])
    path = f"/api/v1/orders/{order['id']}"
    assert (await client.patch(path, json={"notes": "n"}, headers={"If-Match": '"1"'})).status_code == 200
    stale = await client.patch(path, json={"notes": "m"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["revision"] == 2
    assert (await client.get(path)).json()["notes"] == "n"
    assert (await client.get("/api/v1/orders/missing")).status_code == 404


async def test_print_jobs_checks_assignment_and_line_items(client: httpx.AsyncClient) -> None:
    order = (
        await client.post(
            "/api/v1/orders",
            json={
                "order_number": "P",
                "line_items": [{"sku_id": "ok", "quantity": 1}, {"sku_id": "empty", "quantity": 1}],
            },
        )
    ).json()
    path = f"/api/v1/orders/{order['id']}/print-jobs"
    bad = await client.post(path, json={"assignment": {"mode": "printer"}})
    assert bad.status_code == 422 and fields(bad) == ["assignment"]
    refused = await client.post(path, json={"assignment": {"mode": "next_available"}})
    assert refused.status_code == 422 and fields(refused) == ["line_items[1]"]
    assert refused.json()["line_item_ids"] == [order["line_items"][1]["id"]]
    removed = await client.delete(f"/api/v1/orders/{order['id']}/line-items/{order['line_items'][1]['id']}")
    assert removed.status_code == 200 and removed.json()["job_count"] == 1
    sent = await client.post(path)
    assert sent.status_code == 202 and sent.json() == {"order_id": order["id"], "print_revision": 1}


async def test_closed_orders_answer_409_with_a_reason(client: httpx.AsyncClient) -> None:
    order = (await client.post("/api/v1/orders", json={"order_number": "C"})).json()
    path = f"/api/v1/orders/{order['id']}"
    not_yet = await client.post(f"{path}/close")
    assert not_yet.status_code == 409 and "reason" in not_yet.json()
    assert (await client.post(f"{path}/cancel")).json()["status"] == "cancelled"
    assert (await client.post(f"{path}/close")).json()["status"] == "closed"
    changed = await client.patch(path, json={"notes": "late"})
    assert changed.status_code == 409 and "read-only" in changed.json()["detail"]
