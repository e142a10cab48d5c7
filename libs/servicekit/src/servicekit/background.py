"""A background task that does its work when woken and on a timer: the shape of every "recompute when
something changed, and now and then anyway" loop (a matching pass, a forecast), written once so start,
stop, wake-ups and retries behave the same in each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Step = Callable[[bool], Awaitable[None]]
"""One round of a loop's work; told whether a wake-up (rather than the timer) started it."""


class WakeableLoop:
    """Runs `step` when woken and at least every `interval_seconds`, until stopped.

    A wake that arrives while a step runs is kept, so the next step follows at once and no change waits
    for the timer. A step that raises is logged and retried after `retry_seconds`, so one bad round does
    not end the loop."""

    def __init__(
        self,
        name: str,
        step: Step,
        *,
        interval_seconds: float,
        retry_seconds: float,
        on_failure: Callable[[], None] | None = None,
        logger: logging.Logger | None = None,
        stop_timeout_seconds: float = 10.0,
    ) -> None:
        self.name = name
        self.interval = interval_seconds
        self.retry_seconds = retry_seconds
        self.stop_timeout = stop_timeout_seconds
        self._step = step
        self._on_failure = on_failure
        self._log = logger or log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wake.set()

    def absorb_wakes(self) -> None:
        """Forgets the wakes so far: for a step that lets a burst of changes land before it reads them, so
        the wakes of that burst do not ask for another round."""
        self._wake.clear()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Ends the loop after the step under way (cancelled if it outlasts `stop_timeout_seconds`)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=self.stop_timeout)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            woken = False
            with contextlib.suppress(TimeoutError):
                woken = await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            if self._stopping:
                break
            try:
                await self._step(woken)
            except Exception:
                self._log.exception("%s failed; the next round retries", self.name)
                if self._on_failure is not None:
                    self._on_failure()
                await asyncio.sleep(self.retry_seconds)
