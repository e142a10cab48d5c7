"""Issue 12: no input gives a 5xx. Text PostgreSQL refuses is a 422 naming the field, a forged cursor or
`Last-Event-ID` is a 400; each input found so far is checked here, and a seeded schemathesis run over the
whole OpenAPI document (its own stack, so its made-up orders and printers stay out of other tests) must
end with no server error."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import Stack, StackConfig

pytestmark = pytest.mark.integration

SEED = 20261204
EXAMPLES_PER_OPERATION = 10
STREAMING = "/api/v1/events"  # an endless SSE stream: its inputs are checked below instead


def cursor(position: Any) -> str:
    """A cursor as this API writes them (url-safe base64 of JSON), holding whatever a client forged."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def problem_fields(reply: httpx.Response, status: int) -> list[str]:
    assert reply.status_code == status, f"{reply.request.method} {reply.request.url}: {reply.status_code} {reply.text}"
    assert reply.headers["content-type"].startswith("application/problem+json"), reply.headers
    return [error["field"] for error in reply.json()["errors"]]


async def test_a_nul_in_the_sku_search_is_422_naming_q(api: httpx.AsyncClient) -> None:
    assert problem_fields(await api.get("/api/v1/skus", params={"q": "wid\x00get"}), 422) == ["q"]
    assert problem_fields(await api.get("/api/v1/parts", params={"q": "\x00"}), 422) == ["q"]
    assert problem_fields(await api.get("/api/v1/orders", params={"q": "#1\x00"}), 422) == ["q"]


async def test_a_nul_in_the_login_username_is_422_naming_it(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, trust_env=False, timeout=30) as anonymous:
        reply = await anonymous.post("/api/v1/auth/login", json={"username": "ad\x00min", "password": "x"})
    assert problem_fields(reply, 422) == ["username"]


async def test_nuls_and_surrogates_in_ids_to_close_are_422_naming_each(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/api/v1/orders/close",
        content=b'{"order_ids": ["\\u0000", "ok", "a\\u0000b", "\\udc00"]}',
        headers={"content-type": "application/json"},
    )
    assert problem_fields(reply, 422) == ["order_ids[0]", "order_ids[2]", "order_ids[3]"]


async def test_a_nul_in_a_path_or_a_new_order_is_refused_and_nothing_is_written(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    refused = await api.get("/api/v1/orders/a%00b")  # the gateway refuses control characters in paths
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("application/problem+json")
    async with httpx.AsyncClient(base_url=stack.service_url("orders"), trust_env=False, timeout=30) as orders:
        assert problem_fields(await orders.get("/api/v1/orders/a%00b"), 422) == ["order_id"]  # and the service
    number = "NUL-\x00-1"
    reply = await api.post("/api/v1/orders", json={"order_number": number, "notes": "fine"})
    assert problem_fields(reply, 422) == ["order_number"]
    found = await api.get("/api/v1/orders", params={"q": "NUL-", "include_closed": "true"})
    assert found.status_code == 200 and found.json()["items"] == []


async def test_a_nul_in_an_uploaded_part_name_or_file_name_is_422_naming_it(api: httpx.AsyncClient) -> None:
    gcode = b"; model printing time: 30m 0s\nG28\n"
    reply = await api.post(
        "/api/v1/parts", files={"file": ("cube.gcode", gcode)}, data={"name": "Cu\x00be", "material_type": "PLA"}
    )
    assert problem_fields(reply, 422) == ["name"]
    # Written by hand: HTTP clients percent-encode a NUL in a file name, a hostile one need not.
    body = (
        b"--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nCube\r\n"
        b"--b\r\nContent-Disposition: form-data; name=\"material_type\"\r\n\r\nPLA\r\n"
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cu\x00be.gcode\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + gcode + b"\r\n--b--\r\n"
    )
    reply = await api.post("/api/v1/parts", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert problem_fields(reply, 422) == ["file"]


@pytest.mark.parametrize(
    ("path", "forged"),
    [
        ("/api/v1/printers", {"id": "p1"}),  # no name
        ("/api/v1/printers", {"name": "a\x00", "id": "p1"}),
        ("/api/v1/printers", {"name": 1, "id": "p1"}),
        ("/api/v1/jobs", {"sort": "priority", "after": [2**40, "2026-01-01", "2026-01-01T00:00:00+00:00",
                                                        "o", 1, 0, 1, "j"]}),  # outside int4
        ("/api/v1/jobs", {"sort": "priority", "after": [0, "2026-01-01", "2026-01-01T00:00:00", "o", 1, 0, 1, "j"]}),
        ("/api/v1/jobs", {"sort": "created_at", "after": [{"x": 1}, "j"]}),
        ("/api/v1/jobs", {"sort": "priority", "after": "x"}),
        ("/api/v1/orders", {"s": "-created_at", "k": "2026-01-01T00:00:00", "id": "o"}),  # no offset
        ("/api/v1/orders", {"s": "-created_at", "k": 5, "id": "o"}),
        ("/api/v1/customers", {"key": ["x"]}),
        ("/api/v1/skus", {"code": "a"}),
        ("/api/v1/parts", {"after": None}),
    ],
)
async def test_a_forged_cursor_is_400_naming_it(api: httpx.AsyncClient, path: str, forged: Any) -> None:
    assert problem_fields(await api.get(path, params={"cursor": cursor(forged)}), 400) == ["cursor"]


@pytest.mark.parametrize("garbage", ["!!", "bm90IGpzb24", cursor([1, 2]), cursor("x")])
async def test_a_cursor_that_is_no_cursor_at_all_is_400(api: httpx.AsyncClient, garbage: str) -> None:
    for path in ("/api/v1/printers", "/api/v1/jobs", "/api/v1/orders", "/api/v1/skus", "/api/v1/customers"):
        assert problem_fields(await api.get(path, params={"cursor": garbage}), 400) == ["cursor"]


@pytest.mark.parametrize(
    ("header", "query"),
    [
        (b"o\xb2.q1.p1", None),  # a superscript two: str.isdigit() says yes, int() says no
        (b"o1.q1.p99999999999999999999", None),
        (b"hello world", None),
        (None, "o\u0661.q1.p1"),  # an Arabic-Indic one, by query
    ],
)
async def test_a_last_event_id_that_is_no_event_id_is_400(
    api: httpx.AsyncClient, header: bytes | None, query: str | None
) -> None:
    headers = {"Last-Event-ID": header} if header is not None else {}
    params = {"last_event_id": query} if query is not None else {}
    async with api.stream("GET", "/api/v1/events", headers=headers, params=params) as reply:
        await reply.aread()
    assert problem_fields(reply, 400) == (["Last-Event-ID"] if header is not None else ["last_event_id"])


async def test_an_event_id_of_another_gateway_version_starts_live(api: httpx.AsyncClient) -> None:
    async with api.stream("GET", "/api/v1/events", headers={"Last-Event-ID": "o1.q2"}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")


@pytest.fixture(scope="module")
async def fuzzed_stack() -> AsyncIterator[Stack]:
    """Every service without printers: what schemathesis creates and deletes stays in this stack."""
    folder = Path(tempfile.mkdtemp(prefix="printfarm-fuzz-"))
    try:
        async with Stack(StackConfig.for_tests(folder, os.environ, start_simulator=False)) as running:
            yield running
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(900)  # about 2 minutes on 2 idle cores; far longer when other suites share them
def test_a_seeded_schemathesis_run_over_the_whole_api_finds_no_server_error(
    fuzzed_stack: Stack, tmp_path: Path
) -> None:
    token = fuzzed_stack.api_token
    run = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{fuzzed_stack.api_url}/api/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--checks", "not_a_server_error",
            "--seed", str(SEED),
            "--max-examples", str(EXAMPLES_PER_OPERATION),
            "--workers", "2",
            "--exclude-path", STREAMING,
            "--request-timeout", "30",
            "--generation-database", "none",
            "--no-color",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=840, check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20_000:].replace(token, "<token>")
    assert "generated" in report and "passed" in report
