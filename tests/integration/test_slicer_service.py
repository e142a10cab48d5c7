"""The slicer service on real NATS JetStream and PostgreSQL with the real OpenSCAD and PrusaSlicer: the test
plays the queue (publishing `SlicePart`) and the skus service (putting sources into `part-files`).

Two replicas share the work queue: the same slice asked twice at once is made once, and a replica
killed with SIGKILL mid-slice leaves its request to the other, which slices it after the claim's lease.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.envelope import Envelope
from contracts.queue.v1 import SlicePart
from contracts.shared_values import FileRef, Material
from contracts.skus.v1 import PART_FILES_BUCKET
from contracts.slicer.v1 import SLICED_FILES_BUCKET, SliceCompleted, SliceFailed
from devstack import Stack, StackConfig, wait_until
from servicekit.ids import new_id
from servicekit.pagination import encode_cursor

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("openscad") is None or shutil.which("prusa-slicer") is None,
        reason="needs the openscad and prusa-slicer binaries (Debian packages; `make test` installs them as root)",
    ),
]

LEASE_SECONDS = 10.0
"""Short, so the kill test is quick, yet long enough that a replica starved of CPU by a busy machine still
renews its claim in time (it renews every third of it)."""
ACK_WAIT_SECONDS = 10.0
NAME_TAG = b'label = "Ann"; // the name\nlinear_extrude(2) text(label, size = 8);\ncube([40, 12, 1]);\n'
HEAVY = b"detail = 40; // [16:128]\nminkowski() { sphere(20, $fn = detail); sphere(3, $fn = 24); }\n"
"""Renders for seconds (more with a higher `detail`): long enough to act while it is being sliced."""


@pytest.fixture(scope="module")
async def slicer_stack() -> AsyncIterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-slicer-it-"))
    config = StackConfig.for_tests(
        folder,
        os.environ,
        services=("slicer",),
        start_simulator=False,
        extra_env={
            "SLICER_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
            "CONSUMER_ACK_WAIT_SECONDS": str(ACK_WAIT_SECONDS),
            "SLICER_WAIT_POLL_SECONDS": "0.2",
        },
    )
    try:
        async with Stack(config) as running:
            yield running
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


class QueueStandIn:
    """Puts sources where the skus service would, asks for slices and collects every answer."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=10)
        self.answers: dict[str, list[Envelope]] = defaultdict(list)

    async def start(self) -> None:
        await self.nc.subscribe("slicer.v1.>", cb=self._received)

    async def _received(self, msg: Msg) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        assert envelope.data is not None
        self.answers[envelope.data["slice_key"]].append(envelope)

    async def put_source(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        try:
            store = await self.js.object_store(PART_FILES_BUCKET)
        except NotFoundError:
            store = await self.js.create_object_store(PART_FILES_BUCKET)
        await store.put(sha256, content)
        return sha256

    async def ask(
        self, sha256: str, slice_key: str, *, parameters: dict[str, Any] | None = None, kind: str = "scad"
    ) -> Envelope:
        message = SlicePart(
            slice_key=slice_key,
            source=FileRef.model_validate(
                {"sha256": sha256, "filename": f"part.{kind}", "kind": kind, "size_bytes": 100}
            ),
            parameters=parameters or {},
            printer_model="X1C",
            material=Material(type="PLA", color="#FFFFFF"),
            requested_at=datetime.now(UTC),
        )
        envelope = Envelope(
            id=new_id(), type=message.SUBJECT, source="/services/queue", data=message.model_dump(mode="json")
        )
        await self.js.publish(envelope.type, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": envelope.id})
        return envelope

    async def answer(self, slice_key: str, timeout: float = 90.0) -> Envelope:
        await wait_until(lambda: self.answers[slice_key], timeout, f"an answer for {slice_key}")
        return self.answers[slice_key][0]

    async def sliced_file(self, sha256: str) -> bytes:
        store = await self.js.object_store(SLICED_FILES_BUCKET)
        return bytes((await store.get(sha256)).data or b"")


@pytest.fixture
async def queue(slicer_stack: Stack) -> AsyncIterator[QueueStandIn]:
    nc = await nats.connect(slicer_stack.nats_url)
    stand_in = QueueStandIn(nc)
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await nc.close()


async def slices(stack: Stack, **params: str) -> list[dict[str, Any]]:
    """`GET /slices` of any running replica (they share one database)."""
    running = [i for i in stack.instances.values() if i.spec.name == "slicer" and i.process.running]
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        reply = await client.get(f"{running[0].url}/slices", params={"limit": "500", **params})
    reply.raise_for_status()
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


async def second_replica(stack: Stack) -> str:
    if "slicer-2" not in stack.instances or not stack.instances["slicer-2"].process.running:
        await stack.start_service("slicer", instance="slicer-2")
    return "slicer-2"


async def test_a_scad_part_is_rendered_sliced_stored_and_answered_then_answered_from_the_cache(
    slicer_stack: Stack, queue: QueueStandIn
) -> None:
    sha = await queue.put_source(NAME_TAG)
    request = await queue.ask(sha, "line-1/tag/X1C", parameters={"label": "Ann"})
    answer = await queue.answer("line-1/tag/X1C")
    assert answer.type == SliceCompleted.SUBJECT and answer.causationid == request.id
    completed = answer.open(SliceCompleted)
    assert completed.cached is False and completed.source_sha256 == sha and completed.parameters == {"label": "Ann"}
    assert completed.file.bucket == SLICED_FILES_BUCKET and completed.file.kind == "gcode.3mf"
    assert completed.estimate.print_minutes > 0 and completed.estimate.grams > 0
    content = await queue.sliced_file(completed.file.sha256)
    assert hashlib.sha256(content).hexdigest() == completed.file.sha256 and len(content) == completed.file.size_bytes
    with zipfile.ZipFile(io.BytesIO(content)) as project:
        gcode = project.read("Metadata/plate_1.gcode").decode()
    assert "G1" in gcode
    [row] = [s for s in await slices(slicer_stack) if s["source_sha256"] == sha]
    assert row["state"] == "completed" and row["attempts"] == 1 and row["file"]["sha256"] == completed.file.sha256

    await queue.ask(sha, "line-2/tag/X1C", parameters={"label": "Ann"})
    again = (await queue.answer("line-2/tag/X1C")).open(SliceCompleted)
    assert again.cached is True and again.file == completed.file and again.estimate == completed.estimate

    await queue.ask(sha, "line-3/tag/X1C", parameters={"label": "Bo"})
    other = (await queue.answer("line-3/tag/X1C")).open(SliceCompleted)
    assert other.cached is False and other.file.sha256 != completed.file.sha256


async def test_what_openscad_refuses_is_answered_failed_with_its_message_and_not_retried(
    slicer_stack: Stack, queue: QueueStandIn
) -> None:
    sha = await queue.put_source(b"cube([10, 10, 2]\n")
    await queue.ask(sha, "broken/1")
    failed = (await queue.answer("broken/1")).open(SliceFailed)
    assert failed.stage == "render" and "syntax error" in failed.error
    await queue.ask(sha, "broken/2")
    again = (await queue.answer("broken/2")).open(SliceFailed)
    assert again.stage == "render" and again.error == failed.error
    [row] = [s for s in await slices(slicer_stack, state="failed") if s["source_sha256"] == sha]
    assert row["attempts"] == 1


async def scrape(stack: Stack) -> dict[str, float]:
    """The slicer's `/metrics` as `name{labels}` → value."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        reply = await client.get(stack.instance("slicer").url + "/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain"), reply.text
    samples: dict[str, float] = {}
    for line in reply.text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


async def test_metrics_show_the_queue_depth_while_requests_wait_and_time_each_slice(
    slicer_stack: Stack, queue: QueueStandIn
) -> None:
    sliced_count = 'printfarm_slicer_slice_duration_seconds_count{outcome="sliced"}'
    before = await scrape(slicer_stack)
    assert before["printfarm_slicer_queue_depth"] == 0
    heavy, tag = await queue.put_source(HEAVY), await queue.put_source(NAME_TAG)
    await queue.ask(heavy, "metrics/heavy", parameters={"detail": 48})
    labels = ("M1", "M2", "M3")
    for label in labels:
        await queue.ask(tag, f"metrics/{label}", parameters={"label": label})

    async def queued() -> dict[str, float] | None:
        now = await scrape(slicer_stack)
        busy = now["printfarm_slicer_queue_depth"] >= 1 and now["printfarm_slicer_requests_in_progress"] >= 1
        return now if busy else None

    await wait_until(queued, 60, "requests waiting behind the one being sliced (one slot per replica)")
    for key in ("metrics/heavy", *(f"metrics/{label}" for label in labels)):
        assert (await queue.answer(key, timeout=180)).type == SliceCompleted.SUBJECT

    async def drained() -> dict[str, float] | None:
        now = await scrape(slicer_stack)
        return now if now["printfarm_slicer_queue_depth"] == 0 and now[sliced_count] >= 4 else None

    after = await wait_until(drained, 30, "the queue to drain")
    assert after[sliced_count] - before.get(sliced_count, 0.0) == 4, "one observation per slice made"
    total_seconds = after['printfarm_slicer_slice_duration_seconds_sum{outcome="sliced"}']
    assert total_seconds > before.get('printfarm_slicer_slice_duration_seconds_sum{outcome="sliced"}', 0.0)
    assert after['printfarm_slicer_slice_duration_seconds_bucket{le="+Inf",outcome="sliced"}'] == after[sliced_count]


async def test_a_source_missing_from_part_files_is_answered_failed_at_fetch(queue: QueueStandIn) -> None:
    await queue.ask("e" * 64, "missing/1")
    failed = (await queue.answer("missing/1")).open(SliceFailed)
    assert failed.stage == "fetch" and "e" * 64 in failed.error


async def test_the_same_slice_asked_twice_at_once_on_two_replicas_is_made_once(
    slicer_stack: Stack, queue: QueueStandIn
) -> None:
    await second_replica(slicer_stack)
    sha = await queue.put_source(HEAVY)
    await asyncio.gather(
        queue.ask(sha, "twice/a", parameters={"detail": 40}), queue.ask(sha, "twice/b", parameters={"detail": 40})
    )
    first = (await queue.answer("twice/a")).open(SliceCompleted)
    second = (await queue.answer("twice/b")).open(SliceCompleted)
    assert sorted([first.cached, second.cached]) == [False, True]
    assert first.file == second.file
    [row] = [s for s in await slices(slicer_stack) if s["source_sha256"] == sha and s["parameters"] == {"detail": 40}]
    assert row["attempts"] == 1, "one claim, so one pipeline run"
    logs = "".join((slicer_stack.log_dir / f"{name}.log").read_text() for name in ("slicer-1", "slicer-2"))
    assert "waits for" in logs, "the second request waited on the first's claim instead of being queued behind it"


async def test_a_replica_killed_mid_slice_leaves_the_slice_to_the_other(
    slicer_stack: Stack, queue: QueueStandIn
) -> None:
    await second_replica(slicer_stack)
    sha = await queue.put_source(HEAVY)
    await queue.ask(sha, "killed/1", parameters={"detail": 56})

    def ours(row: dict[str, Any]) -> bool:
        return bool(row["source_sha256"] == sha and row["parameters"] == {"detail": 56})

    async def claimed_by() -> str | None:
        rows = [s for s in await slices(slicer_stack, state="slicing") if ours(s)]
        return rows[0]["claim_owner"] if rows else None

    owner = await wait_until(claimed_by, 60, "a replica to claim the slice")
    victim = owner.split("/", 1)[0]
    await slicer_stack.kill_service(victim)
    assert queue.answers["killed/1"] == []
    try:
        answer = (await queue.answer("killed/1", timeout=120)).open(SliceCompleted)
        assert answer.cached is False
        [row] = [s for s in await slices(slicer_stack) if ours(s)]
        assert row["state"] == "completed" and row["attempts"] == 2, "taken over once, after the lease"
        assert len(queue.answers["killed/1"]) == 1
    finally:
        await slicer_stack.start_service("slicer", instance=victim)


async def test_operators_page_through_slices_and_get_problems_for_bad_input(
    slicer_stack: Stack, queue: QueueStandIn
) -> None:
    sha = await queue.put_source(NAME_TAG)
    for label in ("P1", "P2", "P3"):
        await queue.ask(sha, f"page/{label}", parameters={"label": label})
    for label in ("P1", "P2", "P3"):
        await queue.answer(f"page/{label}")
    base = slicer_stack.instance("slicer").url
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=5) as client:
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", "state": "completed", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/slices", params=params)).json()
            assert len(page["items"]) <= 2 and all(i["state"] == "completed" for i in page["items"])
            seen += [i["key"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) >= 3
        one = (await client.get(f"/slices/{seen[0]}")).json()
        assert one["key"] == seen[0] and one["file"]["bucket"] == SLICED_FILES_BUCKET
        counts = (await client.get("/slices/counts")).json()["counts"]
        assert counts["completed"] >= 3

        missing = await client.get("/slices/no-such-key")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        not_a_cursor = await client.get("/slices", params={"cursor": "bm90IGEgY3Vyc29y"})
        assert not_a_cursor.status_code == 400 and not_a_cursor.json()["errors"][0]["field"] == "cursor"
        other_cursor = await client.get("/slices", params={"cursor": encode_cursor({"sort": "priority"})})
        assert other_cursor.status_code == 422 and other_cursor.json()["errors"][0]["field"] == "cursor"
        bad_state = await client.get("/slices", params={"state": "lost"})
        assert bad_state.status_code == 422 and bad_state.json()["errors"][0]["field"] == "state"


async def test_a_replica_stopped_mid_slice_hands_its_slice_over_without_waiting_for_the_lease(
    slicer_stack: Stack, queue: QueueStandIn
) -> None:
    await second_replica(slicer_stack)
    sha = await queue.put_source(HEAVY)
    await queue.ask(sha, "stopped/1", parameters={"detail": 96})

    def ours(row: dict[str, Any]) -> bool:
        return bool(row["source_sha256"] == sha and row["parameters"] == {"detail": 96})

    async def claimed_by() -> str | None:
        rows = [s for s in await slices(slicer_stack, state="slicing") if ours(s)]
        return rows[0]["claim_owner"] if rows else None

    owner = await wait_until(claimed_by, 60, "a replica to claim the slice")
    victim = owner.split("/", 1)[0]
    await slicer_stack.stop_service(victim)  # SIGTERM, as a rollout or a scale-down does
    try:
        answer = (await queue.answer("stopped/1", timeout=120)).open(SliceCompleted)
        assert answer.cached is False
        [row] = [s for s in await slices(slicer_stack) if ours(s)]
        assert row["attempts"] == 2 and "stopped mid-slice" in (row["last_error"] or ""), row
        assert len(queue.answers["stopped/1"]) == 1
    finally:
        await slicer_stack.start_service("slicer", instance=victim)
