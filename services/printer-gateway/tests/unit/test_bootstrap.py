"""The real app, wired by `create_app` with a fake unit of work, a fixed clock and known ids: a route reaches its
handler, which commits, and the injected clock and ids are what the answer shows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from printer_gateway_fakes import InMemoryUnitOfWork

from contracts.printers.v1 import PrinterChanged
from printer_gateway.bootstrap import create_app
from printer_gateway.config import Settings

T0 = datetime(2026, 3, 10, 8, 30, tzinfo=UTC)


def test_registering_a_printer_through_the_real_app_commits_with_the_injected_clock_and_ids(tmp_path: Path) -> None:
    uow = InMemoryUnitOfWork()
    counter = itertools.count(1)
    settings = Settings(printer_secret_key=Fernet.generate_key().decode(), data_dir=tmp_path)
    app = create_app(settings, uow_factory=lambda: uow, clock=lambda: T0, ids=lambda: f"printer-{next(counter)}")
    client = TestClient(app)

    response = client.post(
        "/api/v1/printers",
        json={
            "name": "P1S #1",
            "model": "P1S",
            "protocol": "bambu_lan",
            "host": "10.0.0.5",
            "serial": "01P00A1",
            "access_code": "12345678",
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == "printer-1"
    assert datetime.fromisoformat(body["created_at"]) == T0
    assert "access_code" not in body
    assert uow.commits == 1
    assert list(uow.state.printers) == ["printer-1"]
    [changed] = uow.messages
    assert isinstance(changed, PrinterChanged) and changed.id == "printer-1" and changed.updated_at == T0
