"""The wakeable loop keeps the promises its users lean on: a wake is never lost, a failing round does not end
the loop, and stop ends it even when a round hangs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from servicekit.background import WakeableLoop
from servicekit.testing import wait_until

QUIET = 3600.0
"""An interval the timer never reaches within a test: every round it sees comes from a wake."""


async def test_a_wake_runs_a_round_and_the_timer_runs_one_when_nothing_wakes_it() -> None:
    rounds: list[bool] = []

    async def step(woken: bool) -> None:
        rounds.append(woken)

    woken_loop = WakeableLoop("woken", step, interval_seconds=QUIET, retry_seconds=0.01)
    await woken_loop.start()
    assert woken_loop.running
    woken_loop.wake()
    await wait_until(lambda: rounds == [True], 5, "the woken round")
    await woken_loop.stop()
    assert not woken_loop.running

    rounds.clear()
    timed_loop = WakeableLoop("timed", step, interval_seconds=0.02, retry_seconds=0.01)
    await timed_loop.start()
    await wait_until(lambda: len(rounds) >= 2, 5, "two timer rounds")
    await timed_loop.stop()
    assert set(rounds) == {False}


@pytest.mark.parametrize("absorb", [False, True])
async def test_a_wake_during_a_round_runs_another_unless_the_round_absorbs_it(absorb: bool) -> None:
    gate = asyncio.Event()
    rounds: list[bool] = []
    loop: WakeableLoop

    async def step(woken: bool) -> None:
        rounds.append(woken)
        if len(rounds) == 1:
            await gate.wait()
            if absorb:
                loop.absorb_wakes()

    loop = WakeableLoop("burst", step, interval_seconds=0.05, retry_seconds=0.01)
    await loop.start()
    loop.wake()
    await wait_until(lambda: len(rounds) == 1, 5, "the first round")
    loop.wake()  # a change while the first round runs
    gate.set()
    await wait_until(lambda: len(rounds) >= 2, 5, "the second round")
    await loop.stop()
    # Kept, the wake starts the second round; absorbed, only the timer does.
    assert rounds[:2] == [True, not absorb]


async def test_a_failing_round_is_logged_counted_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[bool] = []
    failures: list[None] = []

    async def step(woken: bool) -> None:
        calls.append(woken)
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    logger = logging.getLogger("test.background")
    loop = WakeableLoop(
        "flaky",
        step,
        interval_seconds=0.02,
        retry_seconds=0.01,
        on_failure=lambda: failures.append(None),
        logger=logger,
    )
    with caplog.at_level(logging.ERROR, logger="test.background"):
        await loop.start()
        await wait_until(lambda: len(calls) >= 2, 5, "a round after the failure")
        await loop.stop()
    assert len(failures) == 1
    assert [r.getMessage() for r in caplog.records] == ["flaky failed; the next round retries"]


async def test_stop_ends_a_round_that_outlasts_its_timeout() -> None:
    started, ended = asyncio.Event(), asyncio.Event()

    async def step(woken: bool) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    loop = WakeableLoop("stuck", step, interval_seconds=QUIET, retry_seconds=0.01, stop_timeout_seconds=0.1)
    await loop.start()
    loop.wake()
    await asyncio.wait_for(started.wait(), 5)
    await loop.stop()
    assert ended.is_set() and not loop.running
