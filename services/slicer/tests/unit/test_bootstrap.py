"""The real app, wired by `create_app`, on the tests' fakes: what it is given replaces the real thing.

The slicer has no write route (requests come from the work queue), so its write use case is driven
through the worker the app wired, and the operators' route shows what it stored.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from slicer_fakes import Clock, FakePipeline, FakeUnitOfWork, Ids, State, request, slice_part

from slicer.bootstrap import create_app
from slicer.config import Settings
from slicer.service_layer.handlers import Claimed
from slicer.service_layer.slicing import SliceWorker


async def test_the_app_claims_through_the_given_unit_of_work_with_the_given_clock_and_ids() -> None:
    state, clock, commits = State(), Clock(), []

    def uow_factory() -> FakeUnitOfWork:
        uow = FakeUnitOfWork(state)
        commits.append(uow)
        return uow

    settings = Settings(service_instance="slicer-7", slicer_claim_lease_seconds=45)
    app = create_app(settings, uow_factory=uow_factory, clock=clock, ids=Ids("claim"), pipeline=FakePipeline())
    worker = app.state.worker
    assert isinstance(worker, SliceWorker)

    begun = await worker.begin(request(slice_part("a" * 64, parameters={"label": "Z"})))

    assert isinstance(begun, Claimed) and begun.owner == "slicer-7/claim-1"
    assert sum(uow.commits for uow in commits) == 1
    client = TestClient(app)  # no lifespan: nothing connects to NATS or PostgreSQL
    answer = client.get(f"/slices/{begun.key}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["state"] == "slicing" and body["claim_owner"] == "slicer-7/claim-1"
    assert body["lease_expires_at"] == (clock() + timedelta(seconds=45)).isoformat().replace("+00:00", "Z")
    missing = client.get("/slices/no-such-key")
    assert missing.status_code == 404 and "no-such-key" in missing.json()["detail"]
