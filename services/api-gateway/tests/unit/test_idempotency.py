"""Idempotency-Key: one creation per key; the same request replays, a different one is refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from api_gateway.domain.errors import StillInFlight
from api_gateway.domain.idempotency import (
    Fingerprint,
    IdempotencyRecord,
    StoredResponse,
    Verdict,
    judge,
)
from api_gateway.service_layer.idempotency import IdempotencyKeys

from .api_gateway_fakes import FakeClock, FakeUnitOfWork, Store
from .conftest import Harness, Recorder

FP = Fingerprint("POST", "/api/v1/orders", "abc")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_judge() -> None:
    record = IdempotencyRecord("p", "k", FP, T0)
    stale = timedelta(minutes=5)
    assert judge(record, Fingerprint("POST", "/api/v1/orders", "other"), T0, stale) is Verdict.MISMATCH
    assert judge(record, Fingerprint("POST", "/api/v1/skus", "abc"), T0, stale) is Verdict.MISMATCH
    assert judge(record, FP, T0 + timedelta(minutes=1), stale) is Verdict.IN_FLIGHT
    assert judge(record, FP, T0 + timedelta(minutes=6), stale) is Verdict.ABANDONED
    record.response = StoredResponse(201, {}, b"{}")
    assert judge(record, FP, T0 + timedelta(minutes=6), stale) is Verdict.REPLAY


def test_same_key_and_body_replays_the_first_answer(harness: Harness, recorder: Recorder) -> None:
    with harness.client() as client:
        first = client.post("/api/v1/orders", json={"order_number": "A1"}, headers={"Idempotency-Key": "k1"})
        again = client.post("/api/v1/orders", json={"order_number": "A1"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(recorder.requests) == 1


def test_same_key_with_a_different_body_is_422_naming_the_header(harness: Harness, recorder: Recorder) -> None:
    with harness.client() as client:
        client.post("/api/v1/orders", json={"order_number": "A1"}, headers={"Idempotency-Key": "k1"})
        other = client.post("/api/v1/orders", json={"order_number": "B2"}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert len(recorder.requests) == 1


def test_without_a_key_every_post_is_forwarded(harness: Harness, recorder: Recorder) -> None:
    with harness.client() as client:
        client.post("/api/v1/orders", json={"order_number": "A1"})
        client.post("/api/v1/orders", json={"order_number": "A1"})
    assert len(recorder.requests) == 2


def test_keys_are_scoped_to_the_caller(harness: Harness, recorder: Recorder) -> None:
    with harness.client() as client:
        client.post("/api/v1/orders", json={"a": 1}, headers={"Idempotency-Key": "shared"})
    with harness.client(token=None, auth_disabled=True) as anonymous:
        reply = anonymous.post("/api/v1/orders", json={"a": 2}, headers={"Idempotency-Key": "shared"})
    assert reply.status_code == 201
    assert len(recorder.requests) == 2


def test_a_5xx_is_not_stored_so_the_retry_is_forwarded(harness: Harness, recorder: Recorder) -> None:
    with harness.client() as client:
        failed = client.post(
            "/api/v1/skus", json={"sku": "X"}, headers={"Idempotency-Key": "k2", "x-test-status": "500"}
        )
        retried = client.post("/api/v1/skus", json={"sku": "X"}, headers={"Idempotency-Key": "k2"})
    assert failed.status_code == 500
    assert retried.status_code == 201
    assert len(recorder.requests) == 2


def test_a_4xx_is_replayed(harness: Harness, recorder: Recorder) -> None:
    with harness.client() as client:
        headers = {"Idempotency-Key": "k3", "x-test-status": "409"}
        first = client.post("/api/v1/skus", json={"sku": "X"}, headers=headers)
        again = client.post("/api/v1/skus", json={"sku": "X"}, headers={"Idempotency-Key": "k3"})
    assert first.status_code == again.status_code == 409
    assert len(recorder.requests) == 1


def test_a_service_down_releases_the_key(harness: Harness, recorder: Recorder) -> None:
    harness.transport.down.add("orders")
    with harness.client() as client:
        down = client.post("/api/v1/orders", json={"a": 1}, headers={"Idempotency-Key": "k4"})
        harness.transport.down.clear()
        up = client.post("/api/v1/orders", json={"a": 1}, headers={"Idempotency-Key": "k4"})
    assert down.status_code == 503
    assert up.status_code == 201
    assert len(recorder.requests) == 1


def test_an_upload_with_a_key_is_created_once(harness: Harness, recorder: Recorder) -> None:
    body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.stl\"\r\n\r\n" + b"x" * 2_000_000
    body += b"\r\n--b--\r\n"
    headers = {"Idempotency-Key": "up-1", "Content-Type": "multipart/form-data; boundary=b"}
    with harness.client() as client:
        first = client.post("/api/v1/parts", content=body, headers=headers)
        again = client.post("/api/v1/parts", content=body, headers=headers)
        changed = client.post("/api/v1/parts", content=body.replace(b"x\r\n--b--", b"z\r\n--b--"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["size"] == len(body)
    assert again.json() == first.json()
    assert changed.status_code == 422
    assert len(recorder.requests) == 1


def test_an_invalid_key_is_422(harness: Harness) -> None:
    with harness.client() as client:
        reply = client.post("/api/v1/orders", json={}, headers={"Idempotency-Key": "x" * 300})
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "Idempotency-Key"


def _keys(store: Store, clock: FakeClock, wait: float = 5.0) -> IdempotencyKeys:
    return IdempotencyKeys(
        lambda: FakeUnitOfWork(store),
        clock,
        wait_seconds=wait,
        stale_after=timedelta(minutes=15),
        ttl=timedelta(hours=24),
        poll_seconds=0.01,
    )


async def test_a_duplicate_in_flight_waits_for_the_first_answer() -> None:
    store, clock = Store(), FakeClock()
    keys = _keys(store, clock)
    assert await keys.begin("p", "k", FP) is None
    duplicate = asyncio.create_task(keys.begin("p", "k", FP))
    await asyncio.sleep(0)
    assert not duplicate.done()
    await keys.finish("p", "k", StoredResponse(201, {"location": "/x"}, b"{}"))
    replay = await asyncio.wait_for(duplicate, timeout=5)
    assert replay == StoredResponse(201, {"location": "/x"}, b"{}")


async def test_a_duplicate_in_flight_too_long_gets_a_conflict() -> None:
    keys = _keys(Store(), FakeClock(), wait=0.05)
    await keys.begin("p", "k", FP)
    with pytest.raises(StillInFlight):
        await keys.begin("p", "k", FP)


async def test_an_abandoned_key_is_taken_over() -> None:
    store, clock = Store(), FakeClock()
    keys = _keys(store, clock, wait=0.05)
    await keys.begin("p", "k", FP)
    clock.advance(16 * 60)
    assert await keys.begin("p", "k", FP) is None


async def test_expired_keys_are_pruned() -> None:
    store, clock = Store(), FakeClock()
    keys = _keys(store, clock)
    await keys.begin("p", "old", FP)
    await keys.finish("p", "old", StoredResponse(201, {}, b""))
    clock.advance(25 * 3600)
    await keys.begin("p", "new", FP)
    assert await keys.prune() == 1
    assert list(store.keys) == [("p", "new")]


def _multipart(boundary: str, content: bytes) -> bytes:
    return (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nWidget\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"w.3mf\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()


def test_an_upload_retried_with_a_new_boundary_is_the_same_request(harness: Harness, recorder: Recorder) -> None:
    content = bytes(range(256)) * 4000
    with harness.client() as client:
        replies = [
            client.post(
                "/api/v1/parts",
                content=_multipart(boundary, payload),
                headers={"Idempotency-Key": "up-2", "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            for boundary, payload in (("aaa111", content), ("bbb222", content), ("ccc333", content[:-1]))
        ]
    assert [r.status_code for r in replies] == [201, 201, 422]
    assert replies[1].headers["idempotent-replayed"] == "true"
    assert len(recorder.requests) == 1
