"""Client mistakes become RFC 9457 problems that name the field, never a 500."""

from __future__ import annotations

import sqlalchemy.exc
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from servicekit.problems import Conflict, install_problem_handlers


class Item(BaseModel):
    quantity: int = Field(ge=1)


def client() -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/items")
    async def create(item: Item) -> dict[str, int]:
        if item.quantity == 7:
            raise Conflict("seven is taken", errors=[{"field": "quantity", "message": "taken"}])
        if item.quantity == 13:
            raise RuntimeError("boom")
        if item.quantity == 30:
            raise sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached")
        if item.quantity == 31:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
        if item.quantity == 32:  # a statement that met a connection the server had closed (a restart)
            closed = Exception("connection is closed")
            raise sqlalchemy.exc.DBAPIError("SELECT 1", {}, closed, connection_invalidated=True)
        if item.quantity == 33:
            raise sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception("numeric overflow"))
        return {"quantity": item.quantity}

    return TestClient(app, raise_server_exceptions=False)


def test_invalid_field_is_named() -> None:
    reply = client().post("/items", json={"quantity": 0})
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["errors"][0]["field"] == "quantity"


def test_malformed_json_is_a_400_about_the_body() -> None:
    reply = client().post("/items", content=b"{nope", headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert [e["field"] for e in reply.json()["errors"]] == ["body"]


def test_domain_conflict_and_crash_are_problems_without_internals() -> None:
    c = client()
    conflict = c.post("/items", json={"quantity": 7})
    assert conflict.status_code == 409 and conflict.json()["detail"] == "seven is taken"
    crash = c.post("/items", json={"quantity": 13})
    assert crash.status_code == 500 and "boom" not in crash.text and "Traceback" not in crash.text


def test_a_busy_or_unreachable_database_is_a_503_to_retry_not_a_crash() -> None:
    """A burst larger than the connection pool (seen with 10,000 printers on one gateway) changed nothing."""
    c = client()
    for quantity in (30, 31, 32):
        reply = c.post("/items", json={"quantity": quantity})
        assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
        assert "QueuePool" not in reply.text and "refused" not in reply.text and "closed" not in reply.text
    other = c.post("/items", json={"quantity": 33})
    assert other.status_code == 500 and "overflow" not in other.text
