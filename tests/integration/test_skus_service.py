"""The skus service alone on real PostgreSQL and NATS JetStream (devstack, free ports): migrations,
the outbox relay, the `part-files` object store, rpc.skus.v1.get_skus, the OrderChanged consumer, the
unique SKU code under concurrency and a 200 MB upload that never sits in memory."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from contracts.envelope import Envelope
from contracts.orders.v1 import OrderChanged
from contracts.skus.v1 import GET_SKUS_SUBJECT, PART_FILES_BUCKET, GetSkus, GetSkusReply
from devstack import Stack, StackConfig, wait_until

pytestmark = pytest.mark.integration

SLICE_INFO = """<?xml version="1.0" encoding="UTF-8"?>
<config><plate>
  <metadata key="index" value="1"/><metadata key="prediction" value="1800"/><metadata key="weight" value="7.25"/>
  <filament id="1" type="PETG" color="#112233" used_g="7.25"/>
</plate></config>
"""
GCODE_HEADER = (
    b"; total filament weight [g] : 3.5\n; estimated printing time (normal mode) = 10m 0s\n; filament_type = PLA\n"
)


def sliced_project() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Metadata/plate_1.gcode", "; HEADER_BLOCK_START\nG28\nG1 X1 Y1\n")
        z.writestr("Metadata/slice_info.config", SLICE_INFO)
    return out.getvalue()


@pytest.fixture(scope="module")
async def skus_stack() -> AsyncIterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-skus-it-"))
    config = StackConfig.for_tests(
        folder, os.environ, services=("skus",), start_simulator=False, register_printers=False
    )
    try:
        async with Stack(config) as running:
            yield running
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def skus(skus_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=skus_stack.service_url("skus"), timeout=60, trust_env=False) as client:
        yield client


@pytest.fixture
async def bus(skus_stack: Stack) -> AsyncIterator[tuple[NatsClient, JetStreamContext]]:
    nc = await nats.connect(skus_stack.nats_url)
    try:
        yield nc, nc.jetstream()
    finally:
        await nc.close()


async def upload(client: httpx.AsyncClient, filename: str, content: bytes, **form: str) -> httpx.Response:
    data = {"name": "Part", "material_type": "PLA", **form}
    return await client.post("/api/v1/parts", data=data, files={"file": (filename, content)})


async def stream_messages(js: JetStreamContext, subject: str, subject_id: str) -> list[dict[str, Any]]:
    """Every message on `subject` about `subject_id` so far, oldest first."""
    sub = await js.subscribe(subject, ordered_consumer=True)
    found: list[dict[str, Any]] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except TimeoutError:
                return found
            envelope = Envelope.model_validate_json(msg.data)
            if envelope.subject == subject_id and envelope.data is not None:
                found.append(envelope.data)
    finally:
        await sub.unsubscribe()


async def test_part_upload_puts_the_file_in_the_object_store_and_publishes_part_changed(
    skus: httpx.AsyncClient, bus: tuple[NatsClient, JetStreamContext]
) -> None:
    _, js = bus
    content = sliced_project()
    r = await upload(skus, "bracket.gcode.3mf", content, name="Bracket", material_type="petg")
    assert r.status_code == 201, r.text
    part = r.json()
    assert (part["grams"], part["print_minutes"]) == (7.25, 30.0)
    assert part["material"] == {"type": "PETG", "color": None}, "no colour was asked for"
    assert [(f["type"], f["color"]) for f in part["filaments"]] == [("PETG", "#112233")]
    store = await js.object_store(PART_FILES_BUCKET)
    assert (await store.get(part["sha256"])).data == content

    async def published() -> list[dict[str, Any]]:
        return await stream_messages(js, "skus.v1.part.changed", part["id"])

    [changed] = await wait_until(published, 15, "PartChanged on the SKUS stream")
    assert changed["file"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert changed["file"]["plate"] == "Metadata/plate_1.gcode" and changed["grams"] == 7.25

    download = await skus.get(f"/api/v1/parts/{part['id']}/file")
    assert download.status_code == 200 and download.content == content
    found = await skus.get("/api/v1/parts", params={"q": "BRACK"})
    assert part["id"] in [p["id"] for p in found.json()["items"]]


async def test_sku_is_served_by_rpc_the_moment_it_is_created_and_its_changes_are_published(
    skus: httpx.AsyncClient, bus: tuple[NatsClient, JetStreamContext]
) -> None:
    nc, js = bus
    part = (await upload(skus, "p.gcode", GCODE_HEADER + b"G28\nG1 X1\n", name="Peg")).json()
    r = await skus.post(
        "/api/v1/skus", json={"sku": "RPC-1", "name": "Peg pair", "parts": [{"part_id": part["id"], "quantity": 2}]}
    )
    assert r.status_code == 201, r.text
    sku = r.json()
    reply = await nc.request(GET_SKUS_SUBJECT, GetSkus(ids=[sku["id"], "nope"]).model_dump_json().encode(), timeout=5)
    [item] = GetSkusReply.model_validate_json(reply.data).items
    assert item.id == sku["id"] and item.jobs_per_unit == 2 and item.parts[0].file.sha256 == part["sha256"]
    assert item.materials[0].grams == 7.0

    assert (await skus.patch(f"/api/v1/skus/{sku['id']}", json={"name": "Peg trio"})).status_code == 200
    assert (await skus.delete(f"/api/v1/skus/{sku['id']}")).status_code == 204

    async def three() -> list[dict[str, Any]] | None:
        found = await stream_messages(js, "skus.v1.sku.changed", sku["id"])
        return found if len(found) >= 3 else None

    states = await wait_until(three, 15, "three SkuChanged on the SKUS stream")
    assert [(s["revision"], s["name"], s["deleted"]) for s in states] == [
        (1, "Peg pair", False), (2, "Peg trio", False), (3, "Peg trio", True)
    ]


async def test_concurrent_creates_of_one_code_make_exactly_one_sku(skus: httpx.AsyncClient) -> None:
    codes = ["race-1", "RACE-1", "Race-1", "rAce-1", "race-1", "RACE-1"]
    replies = await asyncio.gather(*(skus.post("/api/v1/skus", json={"sku": c, "name": c}) for c in codes))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [201, 409, 409, 409, 409, 409], [r.text for r in replies]
    winner = next(r.json() for r in replies if r.status_code == 201)
    assert all(winner["id"] in r.json()["detail"] for r in replies if r.status_code == 409)
    found = (await skus.get("/api/v1/skus", params={"q": "ACE-1"})).json()["items"]
    assert [s["id"] for s in found] == [winner["id"]]


async def test_open_orders_learned_from_order_changed_block_sku_deletion(
    skus: httpx.AsyncClient, bus: tuple[NatsClient, JetStreamContext]
) -> None:
    _, js = bus
    sku = (await skus.post("/api/v1/skus", json={"sku": "USED-1", "name": "Used"})).json()

    async def order_changed(status: str, revision: int) -> None:
        """Publish, then wait until the skus consumer has acked it (so it committed)."""
        message = OrderChanged(
            id="order-it-1", order_number="IT-1001", status=status, is_complete=False,
            sku_ids=[sku["id"]], revision=revision, updated_at=datetime.now(UTC),
        )
        envelope = Envelope(
            id=f"it-order-{revision}-{sku['id']}", type=OrderChanged.SUBJECT, source="/tests",
            subject="order-it-1", data=message.model_dump(mode="json"),
        )
        ack = await js.publish(
            envelope.type, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": envelope.id}
        )

        async def applied() -> bool:
            info = await js.consumer_info("ORDERS", "skus__order_changed")
            return info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= ack.seq

        await wait_until(applied, 15, "the skus service to apply OrderChanged")

    await order_changed("queued", 1)
    r = await skus.delete(f"/api/v1/skus/{sku['id']}")
    assert r.status_code == 409 and "IT-1001" in r.json()["detail"], r.text
    await order_changed("closed", 2)
    assert (await skus.delete(f"/api/v1/skus/{sku['id']}")).status_code == 204


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_a_200_mb_upload_streams_through_without_being_held_in_memory(
    skus_stack: Stack, skus: httpx.AsyncClient
) -> None:
    size = 200 * 1024 * 1024
    line = b"G1 X10.000 Y10.000 E0.01000\n"
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        block = line * (1024 * 1024 // len(line))
        sent = 0
        digest.update(GCODE_HEADER)
        yield GCODE_HEADER
        sent += len(GCODE_HEADER)
        while sent < size:
            chunk = block[: size - sent]
            digest.update(chunk)
            sent += len(chunk)
            yield chunk

    boundary = "it-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nHuge\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="material_type"\r\n\r\nPLA\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.gcode"\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def multipart() -> AsyncIterator[bytes]:
        yield head
        for chunk in body():
            yield chunk
        yield tail

    pid = skus_stack.instance("skus").process.pid
    assert pid is not None
    r = await skus.post(
        "/api/v1/parts",
        content=multipart(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=300,
    )
    assert r.status_code == 201, r.text
    assert r.json()["size_bytes"] == size and r.json()["sha256"] == digest.hexdigest()
    assert r.json()["grams"] == 3.5
    assert peak_rss_bytes(pid) < 180 * 1024 * 1024, "the service's peak memory grew with the upload"


async def test_concurrent_edits_each_get_their_own_revision_and_never_deadlock(skus: httpx.AsyncClient) -> None:
    part = (await upload(skus, "e.gcode", GCODE_HEADER + b"G28\n", name="Edit me")).json()
    sku = (
        await skus.post("/api/v1/skus", json={"sku": "EDIT-RACE", "name": "0", "parts": [
            {"part_id": part["id"], "quantity": 1}
        ]})
    ).json()
    sku_edits = [
        skus.patch(
            f"/api/v1/skus/{sku['id']}", json={"name": str(n), "parts": [{"part_id": part["id"], "quantity": n}]}
        )
        for n in range(1, 7)
    ]
    part_edits = [skus.patch(f"/api/v1/parts/{part['id']}", json={"grams": float(n)}) for n in range(1, 7)]
    replies = await asyncio.gather(*sku_edits, *part_edits)
    assert [r.status_code for r in replies] == [200] * 12, [r.text for r in replies if r.status_code != 200]
    sku_revisions = sorted(r.json()["revision"] for r in replies[:6])
    assert len(set(sku_revisions)) == 6
    final = (await skus.get(f"/api/v1/skus/{sku['id']}")).json()
    assert final["revision"] == 13, "6 SKU edits and 6 part edits each revised the SKU once"
    assert (await skus.get(f"/api/v1/parts/{part['id']}")).json()["revision"] == 7
