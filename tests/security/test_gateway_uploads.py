"""Body budgets per route at the API gateway (issue 13): only part uploads may be large; a multipart or
octet-stream body anywhere else is held to the JSON limit, with a 413 problem."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devstack import Stack

from .gateway_harness import ENV_TOKEN, own_gateway

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def assert_too_large(reply: httpx.Response) -> None:
    assert reply.status_code == 413, (reply.status_code, reply.text[:300])
    assert reply.headers["content-type"] == "application/problem+json"


async def test_multipart_and_octet_stream_elsewhere_get_the_json_limit(api: httpx.AsyncClient) -> None:
    big = os.urandom(11 * MiB)  # over the default 10 MiB JSON limit, far under the part-upload one
    assert_too_large(await api.post("/api/v1/orders", files={"file": ("x.bin", big)}))
    assert_too_large(
        await api.post("/api/v1/orders", content=big, headers={"Content-Type": "application/octet-stream"})
    )
    assert_too_large(
        await api.patch("/api/v1/skus/00000000-0000-0000-0000-000000000000", files={"file": ("x.bin", big)})
    )


async def test_a_chunked_body_without_a_length_is_counted_too(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield os.urandom(MiB)

    reply = await api.post(
        "/api/v1/orders", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert_too_large(reply)


async def test_part_uploads_have_their_own_configurable_budget(stack: Stack, tmp_path: Path) -> None:
    async with own_gateway(stack, tmp_path, max_json_bytes=64 * 1024, max_upload_bytes=2 * MiB) as gw:
        async with gw.client(ENV_TOKEN) as client:
            medium = os.urandom(MiB)
            not_a_part = await client.post("/api/v1/orders", files={"file": ("x.stl", medium)})
            assert_too_large(not_a_part)
            assert not_a_part.json()["limit"] == 64 * 1024
            part = await client.post(
                "/api/v1/parts", files={"file": ("x.stl", medium)}, data={"name": "x", "material_type": "PLA"}
            )
            assert part.status_code != 413  # reached the skus service, which judges the file
            too_big = await client.post("/api/v1/parts", files={"file": ("x.stl", os.urandom(3 * MiB))})
            assert_too_large(too_big)
            assert too_big.json()["limit"] == 2 * MiB


def test_the_default_part_upload_budget_is_bounded() -> None:
    from api_gateway.config import Settings

    settings = Settings()
    assert settings.max_upload_bytes <= 256 * MiB  # the ingress' proxy-body-size
