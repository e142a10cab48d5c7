"""The one timer behind every printer's periodic reports."""

from __future__ import annotations

import asyncio
import itertools

from printer_simulator.report_clock import TICK, ReportClock


async def test_each_callback_keeps_its_own_phase_and_cadence_on_one_timer() -> None:
    loop = asyncio.get_running_loop()
    clock = ReportClock(loop)
    times: dict[int, list[float]] = {n: [] for n in range(50)}
    done = asyncio.Event()

    def record(n: int) -> None:
        times[n].append(loop.time())
        if all(len(t) >= 4 for t in times.values()):
            done.set()

    for n in range(50):
        clock.every(0.1 + n % 2 * 0.05, lambda n=n: record(n), delay=n * 0.002)
    handles = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled() and h._callback == clock._run]
    assert len(handles) <= 1, "one timer for every printer"
    await asyncio.wait_for(done.wait(), 10)
    for n, seen in times.items():
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        interval = 0.1 + n % 2 * 0.05
        mean = sum(gaps) / len(gaps)
        assert interval - TICK < mean < interval + 0.1, (n, gaps)
        assert min(gaps) > interval / 2, ("never twice in one interval", n, gaps)


async def test_a_cancelled_callback_is_not_called_again() -> None:
    loop = asyncio.get_running_loop()
    clock = ReportClock(loop)
    calls = {"stopped": 0, "other": 0}
    ticked = asyncio.Event()

    def other() -> None:
        calls["other"] += 1
        ticked.set()

    async def others(count: int) -> None:
        target = calls["other"] + count
        while calls["other"] < target:
            ticked.clear()
            await asyncio.wait_for(ticked.wait(), 5)

    stopped = clock.every(0.04, lambda: calls.__setitem__("stopped", calls["stopped"] + 1), delay=0)
    clock.every(0.04, other, delay=0.01)
    await others(3)
    assert calls["stopped"] >= 2
    stopped.cancel()
    before = calls["stopped"]
    await others(3)
    assert calls["stopped"] == before
