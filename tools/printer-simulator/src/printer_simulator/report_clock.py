"""One timer for the periodic reports of every printer on an event loop.

A thousand printers that each report once a second with a timer of their own cost the loop a thousand timer
handles a second (made, pushed on its heap, popped). Here printers are put in buckets of `TICK` seconds and
one timer runs the due bucket: each printer still reports at its own phase and cadence (to within a tick),
as the real ones do.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)

TICK = 0.02
"""Seconds per bucket: how far a report may come later than its printer's own cadence says."""


class Periodic:
    """One printer's place on the clock; `cancel` takes it off."""

    __slots__ = ("callback", "cancelled", "due", "interval")

    def __init__(self, callback: Callable[[], None], interval: float, due: float) -> None:
        self.callback = callback
        self.interval = interval
        self.due = due
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ReportClock:
    """Calls each registered callback every `interval` seconds (first after `delay`), from one timer."""

    _clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReportClock] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float = TICK) -> None:
        self._loop = loop
        self._tick = tick
        self._origin = loop.time()
        self._buckets: dict[int, list[Periodic]] = {}
        self._next = 0
        """The first bucket not yet run."""
        self._handle: asyncio.TimerHandle | None = None
        self._armed = 0
        """The bucket the timer is set for."""

    @classmethod
    def of_running_loop(cls) -> ReportClock:
        loop = asyncio.get_running_loop()
        clock = cls._clocks.get(loop)
        if clock is None:
            clock = cls._clocks[loop] = cls(loop)
        return clock

    def every(self, interval: float, callback: Callable[[], None], *, delay: float) -> Periodic:
        if interval <= 0:
            raise ValueError("interval must be positive")
        entry = Periodic(callback, interval, self._loop.time() + delay)
        self._place(entry)
        return entry

    def _bucket_of(self, due: float) -> int:
        return max(self._next, math.ceil((due - self._origin) / self._tick))

    def _place(self, entry: Periodic) -> None:
        bucket = self._bucket_of(entry.due)
        self._buckets.setdefault(bucket, []).append(entry)
        if self._handle is None or bucket < self._armed:
            self._arm()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._buckets:
            self._armed = min(self._buckets)
            self._handle = self._loop.call_at(self._origin + self._armed * self._tick, self._run)

    def _run(self) -> None:
        self._handle = None
        now = self._loop.time()
        last = max(self._armed, math.floor((now - self._origin) / self._tick))  # timers may fire a little early
        buckets = self._buckets
        while self._next <= last:
            entries = buckets.pop(self._next, None)
            self._next += 1
            for entry in entries or ():
                if entry.cancelled:
                    continue
                entry.due += entry.interval
                if entry.due <= now:  # the loop fell behind by more than an interval: no burst of catch-ups
                    entry.due = now + entry.interval
                buckets.setdefault(self._bucket_of(entry.due), []).append(entry)
                try:
                    entry.callback()
                except Exception:
                    log.exception("periodic report failed")
        self._arm()
