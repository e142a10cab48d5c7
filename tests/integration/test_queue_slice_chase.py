"""Slice requests whose answer never comes, in the queue service alone on real PostgreSQL and NATS JetStream
(the test plays the orders service, a printer gateway and a slicer that lost the request): the queue asks
again after its answer timeout, a bounded number of times, then fails the job saying the slicer did not answer;
a request answered meanwhile is not asked again."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest

from devstack import Stack, StackConfig, wait_until

from .test_queue_slicing import Wire, completed, jobs_of, print_request, source

pytestmark = pytest.mark.integration

ANSWER_SECONDS = 3.0


@pytest.fixture(scope="module")
async def chasing_queue() -> AsyncIterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-queue-chase-it-"))
    config = StackConfig.for_tests(
        folder, os.environ, services=("queue",), start_simulator=False,
        extra_env={"MATCH_INTERVAL_SECONDS": "0.3", "FULL_MATCH_INTERVAL_SECONDS": "0.5",
                   "SLICE_ANSWER_TIMEOUT_SECONDS": str(ANSWER_SECONDS), "MAX_SLICE_REQUESTS": "2"},
    )
    try:
        async with Stack(config) as running:
            yield running
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def wire(chasing_queue: Stack) -> AsyncIterator[Wire]:
    nc = await nats.connect(chasing_queue.nats_url)
    recorder = Wire(nc)
    await recorder.start()
    try:
        yield recorder
    finally:
        await nc.drain()


@pytest.fixture
async def http(chasing_queue: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=chasing_queue.service_url("queue"), timeout=30, trust_env=False) as client:
        yield client


async def test_an_unanswered_slice_is_asked_again_then_its_job_fails_and_an_answered_one_is_left(
    wire: Wire, http: httpx.AsyncClient
) -> None:
    material = f"PLA-{uuid.uuid4().hex[:6]}"
    await wire.printer(str(uuid.uuid4()), "X1C", material, state="printing", tags=[material])
    lost, answered = source("scad"), source("scad")
    lost_order, answered_order = str(uuid.uuid4()), str(uuid.uuid4())
    await wire.publish(print_request(lost_order, 1, material, lost, {"l": {"label": "Ada"}}))
    await wire.publish(print_request(answered_order, 1, material, answered, {"l": {"label": "Bob"}}))
    (first,) = await wait_until(lambda: wire.requests_for(lost.sha256), 30, "the first slice request")
    (other,) = await wait_until(lambda: wire.requests_for(answered.sha256), 30, "the other slice request")
    await wire.publish(completed(other, "f" * 64))
    await wait_until(lambda: jobs_of(http, answered_order, "queued"), 30, "the answered order's job queued")

    again = await wait_until(lambda: len(wire.requests_for(lost.sha256)) == 2 and wire.requests_for(lost.sha256),
                             30, "the lost request asked again")
    assert again[1].slice_key == first.slice_key and again[1].parameters == {"label": "Ada"}
    (job,) = await wait_until(lambda: jobs_of(http, lost_order, "failed"), 30, "the job failed after two requests")
    assert job["error"] == "the slicer did not answer 2 requests for this file (3 s each)"
    assert len(wire.requests_for(lost.sha256)) == 2, "bounded: two requests in all"
    assert len(wire.requests_for(answered.sha256)) == 1, "an answered request is never asked again"
