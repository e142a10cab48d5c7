"""The real app, wired by `create_app`, on the tests' fakes: what it is given replaces the real thing, and
a write route works without the lifespan (nothing connects to NATS or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api_gateway.bootstrap import create_app

from .api_gateway_fakes import FakeClock, FakeUnitOfWork, Ids, PlainPasswords, Store
from .conftest import TOKEN, settings_for


def test_a_webhook_is_created_through_the_given_unit_of_work_with_the_given_clock_and_ids(tmp_path: Path) -> None:
    store, clock, opened = Store(), FakeClock(), []

    def uow_factory() -> FakeUnitOfWork:
        uow = FakeUnitOfWork(store)
        opened.append(uow)
        return uow

    app = create_app(
        settings_for(tmp_path), uow_factory=uow_factory, clock=clock, ids=Ids("hook"), passwords=PlainPasswords()
    )
    client = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})

    reply = client.post("/api/v1/webhooks", json={"url": "https://shop.example/h", "secret": "s3cret-s3cret-s3cret"})

    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["id"] == "hook-1" and reply.headers["location"] == "/api/v1/webhooks/hook-1"
    assert body["created_at"].replace("Z", "+00:00") == clock.now.isoformat()
    assert sum(uow.commits for uow in opened) == 1
    assert list(store.webhooks.hooks) == ["hook-1"]
