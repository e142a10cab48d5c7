"""The real skus app from `create_app`, with a fake unit of work, clock and ids put in its place: the
wiring carries them to the handlers (no lifespan entered, so no database or NATS is touched)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from fastapi.testclient import TestClient
from skus_fakes import FakeUnitOfWork, State, ascending_ids, envelope_data

from contracts.envelope import Envelope
from skus.bootstrap import create_app
from skus.config import Settings
from skus.service_layer.unit_of_work import UnitOfWork

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_create_app_takes_the_unit_of_work_clock_and_ids_it_is_given(tmp_path: Path) -> None:
    state, published, opened = State(), list[Envelope](), list[FakeUnitOfWork]()

    def uow_factory() -> UnitOfWork:
        opened.append(FakeUnitOfWork(state, published))
        return cast(UnitOfWork, opened[-1])

    app = create_app(Settings(data_dir=tmp_path), uow_factory=uow_factory, clock=lambda: NOW, ids=ascending_ids())
    client = TestClient(app)

    r = client.post("/api/v1/skus", json={"sku": "BOOT-1", "name": "Wired"})

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "00000000-0000-7000-8000-000000000001"
    assert body["created_at"] == body["updated_at"] == "2026-03-04T05:06:07Z"
    assert [u.commits for u in opened] == [1]
    assert list(state.skus) == [body["id"]]
    [changed] = envelope_data(published, "skus.v1.sku.changed")
    assert changed["id"] == body["id"] and changed["sku"] == "BOOT-1" and changed["revision"] == 1
