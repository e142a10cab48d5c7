"""Forwarding: every owned path reaches its service untouched; failures are problems naming the service."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from api_gateway.domain.routing import owner_of

from .conftest import Harness, Recorder


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/api/v1/parts", "skus"),
        ("/api/v1/parts/1/file", "skus"),
        ("/api/v1/skus/abc", "skus"),
        ("/api/v1/orders/1/print-jobs", "orders"),
        ("/api/v1/customers", "orders"),
        ("/api/v1/jobs/1/matching", "queue"),
        ("/api/v1/queue/materials", "queue"),
        ("/api/v1/printers/1/bed-cleared", "printer-gateway"),
        ("/api/v1/analytics/jobs", "queue"),
        ("/api/v1/analytics/printers", "printer-gateway"),
    ],
)
def test_each_public_path_goes_to_its_owner(harness: Harness, path: str, service: str) -> None:
    with harness.client() as client:
        reply = client.get(path)
    assert reply.status_code == 200
    assert reply.json()["service"] == service
    assert reply.json()["path"] == path


def test_prefix_must_end_at_a_path_segment() -> None:
    assert owner_of("/api/v1/partsx") is None
    assert owner_of("/api/v1/orders") == "orders"
    assert owner_of("/api/v1/analytics") is None, "each analytics path has its own owner"


def test_method_query_headers_and_body_are_forwarded_untouched(harness: Harness, recorder: Recorder) -> None:
    with harness.client() as client:
        reply = client.patch(
            "/api/v1/orders/42?q=A%25_%5C&status=open&status=queued",
            content=b'{"notes": "x"}',
            headers={"Content-Type": "application/json", "If-Match": '"v3"', "Accept": "application/json"},
        )
    assert reply.status_code == 200
    seen = recorder.requests[-1]
    assert seen["method"] == "PATCH"
    assert seen["query"] == "q=A%25_%5C&status=open&status=queued"
    assert seen["body"] == b'{"notes": "x"}'
    assert seen["headers"]["if-match"] == '"v3"'
    assert seen["headers"]["content-type"] == "application/json"
    assert "authorization" not in seen["headers"]
    assert reply.headers["etag"] == '"v1"'
    assert reply.headers["location"] == "/api/v1/orders/42/1"


def test_encoded_path_characters_survive(harness: Harness) -> None:
    with harness.client() as client:
        reply = client.get("/api/v1/skus/a%20b%7E")
        refused = client.get("/api/v1/skus/a%2Fb")
    assert reply.json()["raw_path"] == "/api/v1/skus/a%20b%7E"
    assert refused.status_code == 400  # an encoded slash could be split differently upstream


def test_upstream_status_and_problem_bodies_pass_through(harness: Harness) -> None:
    with harness.client() as client:
        reply = client.delete("/api/v1/skus/1", headers={"x-test-status": "409"})
    assert reply.status_code == 409


def test_large_upload_is_streamed_intact(harness: Harness, recorder: Recorder) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    with harness.client() as client:
        reply = client.post(
            "/api/v1/parts", files={"file": ("part.3mf", payload)}, data={"name": "x", "material_type": "PLA"}
        )
    assert reply.status_code == 201
    seen = recorder.requests[-1]
    assert seen["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert hashlib.sha256(payload).digest() and payload in seen["body"]


def test_a_service_that_is_down_is_a_503_naming_it_while_others_work(harness: Harness) -> None:
    harness.transport.down.add("queue")
    with harness.client() as client:
        down = client.get("/api/v1/jobs")
        up = client.get("/api/v1/orders")
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["service"] == "queue"
    assert "queue" in down.json()["detail"]
    assert up.status_code == 200


def test_a_service_that_times_out_is_a_503(harness: Harness) -> None:
    harness.transport.slow.add("printer-gateway")
    with harness.client() as client:
        reply = client.get("/api/v1/printers")
    assert reply.status_code == 503
    assert reply.json()["service"] == "printer-gateway"


def test_unknown_api_path_is_a_404_problem(harness: Harness) -> None:
    with harness.client() as client:
        reply = client.get("/api/v1/nothing-here")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"


def test_json_body_over_the_limit_is_413(harness: Harness, recorder: Recorder) -> None:
    with harness.client(max_json_bytes=100) as client:
        reply = client.post("/api/v1/orders", json={"notes": "x" * 200})
    assert reply.status_code == 413
    assert reply.headers["content-type"] == "application/problem+json"
    assert recorder.requests == []


def test_upload_over_the_limit_is_413(harness: Harness) -> None:
    with harness.client(max_upload_bytes=1000) as client:
        reply = client.post("/api/v1/parts", files={"file": ("p.stl", b"x" * 5000)})
    assert reply.status_code == 413


def test_ui_is_served_at_the_root(harness: Harness) -> None:
    with harness.client(token=None) as client:
        reply = client.get("/")
    assert reply.status_code == 200
    assert "printfarm" in reply.text


def test_a_chunked_upload_over_the_limit_is_stopped_mid_stream(harness: Harness, recorder: Recorder) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000

    with harness.client(max_upload_bytes=3000) as client:
        reply = client.post(
            "/api/v1/parts", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=zz"}
        )
    assert reply.status_code == 413
    assert recorder.requests == []
