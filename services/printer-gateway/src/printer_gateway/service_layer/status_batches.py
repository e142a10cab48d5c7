"""Printer statuses written in batches: the reports waiting while every writer is busy go together in the next
transaction. A takeover's first statuses come a hundred or more at once, and one transaction each (four round
trips, each waiting for a CPU on a saturated machine) was most of a 10,000-printer handover's last seconds. One
report at a time, as in steady state, is still written at once, alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from printer_gateway.domain.commands import ObserveStatus

WriteStatuses = Callable[[Sequence[ObserveStatus]], Awaitable[frozenset[str]]]
"""Writes reports in one transaction; returns the printers another replica holds now (nothing written for them)."""


class StatusBatches:
    """At most `writers` transactions in flight, each of at most `most` reports. A batch that fails is tried
    again one report at a time, so one printer's bad report, or a lock timeout on its row, fails only itself."""

    def __init__(self, write: WriteStatuses, *, writers: int, most: int) -> None:
        self._write, self._writers, self._most = write, writers, most
        self._waiting: list[tuple[ObserveStatus, asyncio.Future[bool]]] = []
        self._draining = 0
        """Writers still looking at `_waiting`: counted down as a writer stops looking, not when its task is done
        (a report made between the two would have waited for no writer)."""
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return self._draining

    async def write(self, cmd: ObserveStatus) -> bool:
        """True once written, False if a newer lease holder has the printer; raises what the write raised."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((cmd, future))
        if self._draining < self._writers:
            self._draining += 1
            task = asyncio.create_task(self._drain(), name="status-writer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            await self._write_waiting()
        finally:
            self._draining -= 1

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            batch = [(cmd, future) for cmd, future in batch if not future.done()]  # a caller gone (cancelled)
            if not batch:
                continue
            try:
                stale = await self._write([cmd for cmd, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:  # the writer stopped (shutdown): its callers must not wait for ever
                    future.cancel()
                raise
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                for one in batch:
                    await self._alone(*one)
            else:
                for cmd, future in batch:
                    _settle(future, cmd.printer_id not in stale)

    async def _alone(self, cmd: ObserveStatus, future: asyncio.Future[bool]) -> None:
        try:
            stale = await self._write([cmd])
        except Exception as exc:
            _settle(future, exc)
        else:
            _settle(future, cmd.printer_id not in stale)


def _settle(future: asyncio.Future[bool], outcome: bool | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
