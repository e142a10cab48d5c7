"""Cross-service and browser tests share one whole stack per session: real PostgreSQL, NATS JetStream,
the printer simulator and every service, started by ``devstack`` on free ports in a temp folder.

``NATS_URL`` / ``DATABASE_URL`` (and ``<SERVICE>_DATABASE_URL``) point the stack at servers that
already run instead of the embedded ones; ``DEVSTACK_KEEP=1`` keeps the folder (logs) afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import Stack, StackConfig
from devstack import wait_until as _wait_until


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    """The whole stack, started once per session; fails loudly (with the log tail) if any part cannot start."""
    folder = Path(tempfile.mkdtemp(prefix="printfarm-it-"))
    time_scale = float(os.environ.get("SIMULATOR_TIME_SCALE") or 600)
    config = StackConfig.for_tests(folder, os.environ, time_scale=time_scale)
    try:
        async with Stack(config) as running:
            yield running
    finally:
        if not os.environ.get("DEVSTACK_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the API gateway, with the stack's bearer token, the way outside clients talk to printfarm."""
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers=stack.api_headers, timeout=30, trust_env=False
    ) as client:
        yield client


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[Any]]:
    """``await wait_until(predicate, timeout, what)``: poll a sync or async predicate until it is truthy
    (and return its value), or fail naming ``what`` when the deadline passes."""
    return _wait_until
