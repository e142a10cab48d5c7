"""`make smoke` is only worth running if it passes on a healthy stack: run it, as a separate process with
nothing but the API's address and a token, against the session's whole stack."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from devstack import Stack

pytestmark = pytest.mark.integration

SMOKE_CLIENT = Path(__file__).resolve().parents[1] / "smoke" / "smoke_client.py"


async def run_smoke_client(environ: dict[str, str], timeout: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SMOKE_CLIENT),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        raise AssertionError(f"the smoke client ran over {timeout}s:\n{output.decode()}") from None
    assert process.returncode is not None
    return process.returncode, output.decode()


def client_environment(stack: Stack, **extra: str) -> dict[str, str]:
    """The caller's environment without proxies (the stack is on loopback) plus the API and its token."""
    inherited = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return {**inherited, "API": stack.api_url, "API_TOKEN": stack.api_token, **extra}


async def test_the_smoke_client_passes_against_a_whole_stack(stack: Stack) -> None:
    code, output = await run_smoke_client(client_environment(stack, SMOKE_MIN_PRINTERS="4"), timeout=360)
    assert code == 0, output
    assert "FAIL" not in output, output
    assert "live stream announced order.completed" in output, output
    assert "checks pass" in output, output


async def test_the_smoke_client_fails_when_the_token_is_refused(stack: Stack) -> None:
    code, output = await run_smoke_client(client_environment(stack, API_TOKEN="not-a-token"), timeout=60)
    assert code == 1, output
    assert "FAIL the API token is accepted" in output, output
