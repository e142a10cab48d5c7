"""A takeover's connects block a thread each (paho's TCP connect and TLS handshake under aiomqtt): the loop must
have as many threads as the takeover connects at once, not asyncio's default of the CPU count + 4."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from printer_gateway.adapters.drivers import use_blocking_io_threads
from printer_gateway.config import Settings


async def blocked_at_once(count: int, *, within: float) -> None:
    """`count` blocking calls run by the loop's default executor, each waiting until all of them are running."""
    everyone = threading.Barrier(count)
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(None, everyone.wait, within) for _ in range(count)))


async def test_a_whole_wave_of_connects_blocks_its_threads_at_once() -> None:
    connects = Settings().takeover_connects
    use_blocking_io_threads(Settings().blocking_io_threads)
    await blocked_at_once(connects, within=10)


@pytest.mark.skipif(
    min(32, (os.cpu_count() or 1) + 4) >= Settings().takeover_connects, reason="asyncio's default holds a wave here"
)
def test_without_it_a_wave_would_wait_for_threads() -> None:
    """What the gateway had: a fresh loop's default executor cannot hold a wave (the same check fails)."""
    with pytest.raises(threading.BrokenBarrierError):
        asyncio.run(blocked_at_once(Settings().takeover_connects, within=0.5))


def test_the_threads_outnumber_a_takeovers_connects() -> None:
    settings = Settings()
    assert settings.blocking_io_threads >= 2 * settings.takeover_connects
