"""Fixtures for the skus unit tests: the real HTTP edge and service layer over in-memory fakes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from skus_fakes import UPLOAD_LIMIT, FakeBucket, FakeRender, FakeUnitOfWork, Service, State, fake_deps

from contracts.envelope import Envelope
from servicekit.problems import install_problem_handlers
from skus.adapters.file_store import LocalFileStore
from skus.entrypoints import api
from skus.service_layer.unit_of_work import UnitOfWork


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    state, published = State(), list[Envelope]()
    store = LocalFileStore(tmp_path / "files")
    bucket, render = FakeBucket(), FakeRender()
    deps = fake_deps(store, bucket, render)
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(
        api.router(
            lambda: cast(UnitOfWork, FakeUnitOfWork(state, published)), deps, max_upload_bytes=UPLOAD_LIMIT
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(client, state, published, store, bucket, render, deps)
