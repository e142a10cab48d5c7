"""The real app from `create_app`, with its unit of work, clock and ids replaced: one write route answers
from the injected parts and commits (no lifespan, so no database and no NATS)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import cast

from fastapi.testclient import TestClient
from orders_fakes import InMemoryUnitOfWork

from contracts.orders.v1 import OrderChanged
from orders.bootstrap import create_app
from orders.service_layer.unit_of_work import UnitOfWork

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_create_app_wires_the_given_unit_of_work_clock_and_ids() -> None:
    store = InMemoryUnitOfWork()
    counter = itertools.count(1)
    app = create_app(
        uow_factory=lambda: cast(UnitOfWork, store), clock=lambda: NOW, ids=lambda: f"order-{next(counter)}"
    )
    client = TestClient(app)

    reply = client.post("/api/v1/orders", json={"order_number": "B-1", "customer_name": "Ann"})

    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["id"] == "order-1"
    assert body["created_at"] == NOW.isoformat() and body["updated_at"] == NOW.isoformat()
    assert reply.headers["location"] == "/api/v1/orders/order-1" and reply.headers["etag"] == '"1"'
    assert store.commits == 1
    assert store.committed_orders.rows["order-1"].customer_name == "Ann"
    assert [(m.id, m.status) for m in store.messages if isinstance(m, OrderChanged)] == [("order-1", "open")]
