"""Restarting children that die without being asked to, with backoff, the way Kubernetes restarts containers.

A small farm runs exactly ``make run``: one crashed process must not end the farm. Every child the
stack started (PostgreSQL, NATS, the simulator, each service instance) is watched; one that exits
while nobody asked it to stop is logged, restarted after a growing delay, and reported as a crash
loop when it keeps dying. Only ``Stack.stop()`` (Ctrl-C, SIGTERM) ends the farm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from devstack.process import ManagedProcess

log = logging.getLogger("devstack.supervisor")

UnitState = Literal["running", "restarting", "crash-loop"]


@dataclass(frozen=True)
class RestartPolicy:
    """How soon a dead child is started again, and when its dying is called a crash loop.

    The delay doubles from ``initial_delay`` up to ``max_delay`` with each exit in a row; a child that
    ran ``stable_after`` seconds starts over at ``initial_delay``. ``crash_loop_exits`` exits within
    ``crash_loop_window`` seconds is a crash loop: still restarted, but reported loudly.
    """

    initial_delay: float = 0.5
    max_delay: float = 15.0
    stable_after: float = 10.0
    """A child that ran this long was working and was killed (an operator's or a chaos test's `kill -9`, the OOM
    killer), not crash-looping: its next start is immediate again. At 30 s, a service killed every 20 s or so was
    held down 15 s each time after the fourth kill, past the API gateway's 5 s restart grace, so a client
    listing jobs got 503s from a farm that was otherwise healthy."""
    crash_loop_exits: int = 4
    crash_loop_window: float = 120.0


@dataclass(frozen=True)
class RestartDecision:
    delay: float
    crash_loop: bool
    recent_exits: int


@dataclass
class RestartHistory:
    """The exits of one child and what they mean for its next start (pure: the clock is passed in)."""

    policy: RestartPolicy
    restarts: int = 0
    in_a_row: int = 0
    exits: deque[float] = field(default_factory=deque)

    def record_exit(self, now: float, ran_for: float) -> RestartDecision:
        if ran_for >= self.policy.stable_after:
            self.in_a_row = 0
        self.in_a_row += 1
        self.restarts += 1
        self.exits.append(now)
        while self.exits and now - self.exits[0] > self.policy.crash_loop_window:
            self.exits.popleft()
        delay = min(self.policy.max_delay, self.policy.initial_delay * 2 ** (self.in_a_row - 1))
        return RestartDecision(delay, len(self.exits) >= self.policy.crash_loop_exits, len(self.exits))


@dataclass
class Supervised:
    """One thing to keep alive: how to find its current process and how to start it again (ready or raise)."""

    name: str
    current: Callable[[], ManagedProcess | None]
    restart: Callable[[], Awaitable[object]]


@dataclass
class UnitStatus:
    state: UnitState = "running"
    restarts: int = 0
    last_exit: str | None = None
    down_since: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts, "last_exit": self.last_exit}


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Watches ``units()`` and restarts any whose process exits while not ``stopping``.

    ``units`` is asked again whenever ``notice()`` is called (a new instance, a replaced process), so
    what the stack starts later is supervised too. ``on_change`` runs after every state change.
    """

    def __init__(
        self,
        units: Callable[[], Iterable[Supervised]],
        *,
        policy: RestartPolicy | None = None,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._units = units
        self.policy = policy or RestartPolicy()
        self._on_change = on_change
        self._clock = clock
        self._histories: dict[str, RestartHistory] = {}
        self.statuses: dict[str, UnitStatus] = {}
        self._recovering: dict[str, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="devstack-supervisor")

    async def stop(self) -> None:
        """Stop watching and abandon restarts under way (the stack is being stopped)."""
        tasks = [t for t in (self._task, *self._recovering.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        self._recovering.clear()

    def notice(self) -> None:
        """The set of units or their processes changed: watch them afresh."""
        self._changed.set()

    def status(self, name: str) -> UnitStatus:
        return self.statuses.setdefault(name, UnitStatus())

    @property
    def degraded(self) -> list[str]:
        return [name for name, s in self.statuses.items() if s.state != "running"]

    async def _watch(self) -> None:
        while True:
            watched: dict[asyncio.Future[Any], tuple[Supervised, ManagedProcess]] = {}
            for unit in self._units():
                process = unit.current()
                if unit.name in self._recovering or process is None or process.stopping or process.pid is None:
                    continue
                watched[asyncio.ensure_future(process.wait())] = (unit, process)
            changed: asyncio.Future[Any] = asyncio.ensure_future(self._changed.wait())
            try:
                done, _ = await asyncio.wait([*watched, changed], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in [*watched, changed]:
                    task.cancel()
            self._changed.clear()
            for task in done:
                if task is changed:
                    continue
                unit, process = watched[task]
                if not process.stopping and unit.current() is process and unit.name not in self._recovering:
                    self._recovering[unit.name] = asyncio.create_task(
                        self._recover(unit, process), name=f"devstack-restart-{unit.name}"
                    )

    async def _recover(self, unit: Supervised, died: ManagedProcess) -> None:
        history = self._histories.setdefault(unit.name, RestartHistory(self.policy))
        status = self.status(unit.name)
        status.down_since = self._clock()
        ran_for = self._clock() - died.started_at if died.started_at is not None else 0.0
        why = describe_exit(died.returncode)
        try:
            while True:
                decision = history.record_exit(self._clock(), ran_for)
                status.restarts, status.last_exit = history.restarts, why
                status.state = "crash-loop" if decision.crash_loop else "restarting"
                self._on_change()
                if decision.crash_loop:
                    log.error(
                        "%s is in a crash loop: %d exits in %gs (last: %s); restart %d in %.1fs. "
                        "Last lines of %s:\n%s",
                        unit.name, decision.recent_exits, self.policy.crash_loop_window, why, history.restarts,
                        decision.delay, died.log_path, died.log_tail(20) or "(no output)",
                    )
                else:
                    log.warning(
                        "%s %s after %.1fs; restart %d in %.1fs",
                        unit.name, why, ran_for, history.restarts, decision.delay,
                    )
                await asyncio.sleep(decision.delay)  # backoff, not synchronisation
                try:
                    await unit.restart()
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # a start that fails is one more exit in a row
                    why, ran_for = f"failed to start again: {e}", 0.0
                    current = unit.current()
                    died = current if current is not None else died
                    continue
                break
            process = unit.current()
            downtime = self._clock() - status.down_since
            status.state, status.down_since = "running", None
            log.warning("%s is back (pid %s) after %.1fs down", unit.name, process.pid if process else "?", downtime)
        finally:
            self._recovering.pop(unit.name, None)
            self._on_change()
            self.notice()
