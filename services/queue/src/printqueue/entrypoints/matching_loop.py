"""Runs the matching pass when woken (after a consumed message that can change the outcome) and on a
short timer (dispatch deadlines). Every replica runs one; the pass's advisory lock serialises them.
Beside a full pass, at most once every `full_pass_seconds`, slice requests left unanswered too long are asked
again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from printqueue.domain import commands
from printqueue.domain.matching import Dispatch
from printqueue.entrypoints.metrics import QueueMetrics
from printqueue.service_layer.handlers import Deps, PrinterPass
from printqueue.service_layer.matching_pass import run_matching_pass
from printqueue.service_layer.slice_requests import chase_unanswered_slices
from printqueue.service_layer.unit_of_work import UnitOfWork
from servicekit.background import WakeableLoop

log = logging.getLogger(__name__)


class MatchingLoop:
    """Woken: a full pass. Timer tick: deadlines only (cheap), and a full pass every `full_pass_seconds` as a
    safety net (a printer's dispatch cooldown ending, a wake lost to a crash between commit and wake)."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        deps: Deps,
        interval_seconds: float,
        full_pass_seconds: float = 10.0,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.uow_factory, self.deps, self.interval = uow_factory, deps, interval_seconds
        self.full_pass_seconds = full_pass_seconds
        self.metrics = metrics
        self._last_full = 0.0
        self._last_chase = -full_pass_seconds
        self.passes = 0
        self.dispatched = 0
        self._loop = WakeableLoop(
            "matching-loop",
            self._step,
            interval_seconds=interval_seconds,
            retry_seconds=min(interval_seconds, 1.0),
            on_failure=self._count_failure,
            logger=log,
        )

    def wake(self) -> None:
        self._loop.wake()

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self, *, assign: bool = True) -> list[Dispatch]:
        if assign:
            self._last_full = time.monotonic()
        started = time.perf_counter()
        done = await run_matching_pass(commands.RunMatchingPass(assign), self.uow_factory(), self.deps)
        self.passes += 1
        self.dispatched += len(done)
        if self.metrics is not None:
            self.metrics.observe_pass(time.perf_counter() - started, len(done), full=assign)
        return done

    def count_printer_pass(self, done: PrinterPass) -> None:
        """A pass the PrinterChanged consumer ran for one printer in its own transaction, counted with this loop's."""
        self.passes += 1
        self.dispatched += len(done.dispatched)
        if self.metrics is not None:
            self.metrics.observe_printer_pass(done.seconds, len(done.dispatched))

    async def chase_slices(self) -> int:
        """Slice requests left unanswered too long are asked again (bounded), beside the full passes."""
        return await chase_unanswered_slices(commands.ChaseUnansweredSlices(), self.uow_factory(), self.deps)

    async def _step(self, woken: bool) -> None:
        full = woken or time.monotonic() - self._last_full >= self.full_pass_seconds
        await self.run_once(assign=full)
        # Not after every woken pass: answers are late after minutes (`slice_answer_seconds`), and a chase's
        # transaction right after the pass competed with publishing that pass's StartPrint.
        if full and time.monotonic() - self._last_chase >= self.full_pass_seconds:
            self._last_chase = time.monotonic()
            await self.chase_slices()

    def _count_failure(self) -> None:
        if self.metrics is not None:
            self.metrics.failed_passes.inc()
