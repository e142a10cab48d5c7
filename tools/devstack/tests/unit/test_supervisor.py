"""The supervisor: restart decisions (pure, property-tested) and real child processes killed with SIGKILL."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.process import ManagedProcess
from devstack.supervisor import RestartHistory, RestartPolicy, Supervised, Supervisor, describe_exit
from devstack.waiting import wait_until

POLICY = RestartPolicy(initial_delay=0.5, max_delay=8.0, stable_after=30.0, crash_loop_exits=4, crash_loop_window=60.0)
FAST = RestartPolicy(initial_delay=0.01, max_delay=0.05, stable_after=5.0, crash_loop_exits=3, crash_loop_window=30.0)


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=1, max_size=40))
def test_delays_double_within_bounds_and_a_stable_run_starts_over(steps: list[tuple[float, float]]) -> None:
    history, now, previous = RestartHistory(POLICY), 0.0, 0.0
    for gap, ran_for in steps:
        now += gap
        decision = history.record_exit(now, ran_for)
        assert POLICY.initial_delay <= decision.delay <= POLICY.max_delay
        if ran_for >= POLICY.stable_after:
            assert decision.delay == POLICY.initial_delay
        else:
            assert decision.delay == min(POLICY.max_delay, max(previous * 2, POLICY.initial_delay))
        previous = decision.delay
    assert history.restarts == len(steps)


@given(st.lists(st.floats(0, 50), min_size=1, max_size=30))
def test_a_crash_loop_is_enough_exits_within_the_window(gaps: list[float]) -> None:
    history, now, times = RestartHistory(POLICY), 0.0, []
    for gap in gaps:
        now += gap
        times.append(now)
        decision = history.record_exit(now, 0.0)
        recent = [t for t in times if now - t <= POLICY.crash_loop_window]
        assert decision.recent_exits == len(recent)
        assert decision.crash_loop == (len(recent) >= POLICY.crash_loop_exits)


def test_a_service_killed_every_so_often_after_working_is_started_again_at_once() -> None:
    """The default policy: a child killed every 20 s (up some 15 s each time) is a crash loop by count, but each
    start comes after the first delay, not the doubled one: held down 15 s, it outlasted the API gateway's
    restart grace and clients got 503s."""
    history, now = RestartHistory(RestartPolicy()), 0.0
    for _ in range(10):
        now += 20.0
        decision = history.record_exit(now, ran_for=15.0)
        assert decision.delay == RestartPolicy().initial_delay
    assert decision.crash_loop
    assert history.record_exit(now + 1.0, ran_for=1.0).delay == 2 * RestartPolicy().initial_delay


def test_exits_are_described_by_signal_name_or_code() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exited with code 3"


class Child:
    """A real child process the supervisor keeps alive; it exits at once with code 3 while ``crash`` exists."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name, self.folder = name, folder
        self.crash = folder / f"{name}.crash"
        self.process: ManagedProcess | None = None

    async def start(self) -> None:
        script = f"import os, sys, time\nif os.path.exists({str(self.crash)!r}): sys.exit(3)\ntime.sleep(600)\n"
        self.process = ManagedProcess(self.name, [sys.executable, "-c", script], log_path=self.folder / "child.log")
        await self.process.start()

    def unit(self) -> Supervised:
        return Supervised(self.name, lambda: self.process, self.start)


@pytest.fixture
async def children(tmp_path: Path) -> AsyncIterator[tuple[list[Child], Supervisor]]:
    kids = [Child(tmp_path, "postgres"), Child(tmp_path, "orders-1")]
    for kid in kids:
        await kid.start()
    supervisor = Supervisor(lambda: [k.unit() for k in kids], policy=FAST)
    supervisor.start()
    yield kids, supervisor
    await supervisor.stop()
    for kid in kids:
        if kid.process is not None:
            await kid.process.stop(1)


async def test_a_killed_child_is_restarted_and_the_restart_is_logged(
    children: tuple[list[Child], Supervisor], caplog: pytest.LogCaptureFixture
) -> None:
    (postgres, orders), supervisor = children
    assert postgres.process is not None and orders.process is not None
    first, untouched = postgres.process.pid, orders.process.pid
    with caplog.at_level(logging.WARNING, logger="devstack.supervisor"):
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await wait_until(
            lambda: postgres.process is not None and postgres.process.pid != first and postgres.process.running
            and supervisor.status("postgres").state == "running",
            10, "postgres to be started again",
        )
    assert supervisor.status("postgres").restarts == 1
    assert supervisor.status("postgres").last_exit == "killed by SIGKILL"
    assert orders.process.pid == untouched and supervisor.status("orders-1").restarts == 0
    assert "postgres killed by SIGKILL" in caplog.text and "postgres is back" in caplog.text


async def test_a_crash_loop_is_reported_and_healing_ends_it(
    children: tuple[list[Child], Supervisor], caplog: pytest.LogCaptureFixture
) -> None:
    (_, orders), supervisor = children
    assert orders.process is not None and orders.process.pid is not None
    orders.crash.touch()
    with caplog.at_level(logging.WARNING, logger="devstack.supervisor"):
        os.kill(orders.process.pid, signal.SIGKILL)
        await wait_until(lambda: supervisor.status("orders-1").state == "crash-loop", 10, "a crash loop")
        assert supervisor.degraded == ["orders-1"]
        assert "orders-1 is in a crash loop" in caplog.text and "exited with code 3" in caplog.text
        orders.crash.unlink()
        await wait_until(
            lambda: supervisor.status("orders-1").state == "running" and orders.process is not None
            and orders.process.running,
            10, "orders-1 to run again",
        )
    assert supervisor.status("orders-1").restarts >= FAST.crash_loop_exits
    assert supervisor.degraded == []


async def test_a_child_stopped_on_purpose_stays_stopped(children: tuple[list[Child], Supervisor]) -> None:
    (postgres, orders), supervisor = children
    assert postgres.process is not None and orders.process is not None and orders.process.pid is not None
    stopped = postgres.process
    await stopped.stop(1)
    os.kill(orders.process.pid, signal.SIGKILL)  # a later crash: handled after the stop was seen
    await wait_until(lambda: supervisor.status("orders-1").restarts == 1 and supervisor.degraded == [], 10,
                     "orders-1 to be restarted")
    assert postgres.process is stopped and not stopped.running
    assert supervisor.status("postgres").restarts == 0
