"""The print lifecycle of a printer that runs plain G-code (Klipper, Prusa, OctoPrint), apart from any
protocol: a file prints for its sliced time divided by the time scale, can be paused, resumed,
cancelled, fail with a message, or be cut by a power loss. Timers fire at the moments it changes."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from printer_simulator.project import JobRefused, inspect_gcode

log = logging.getLogger(__name__)

STANDBY, PRINTING, PAUSED, COMPLETE, CANCELLED, ERROR = (
    "standby",
    "printing",
    "paused",
    "complete",
    "cancelled",
    "error",
)
ACTIVE = frozenset({PRINTING, PAUSED})


class Busy(Exception):
    """A start while a print runs: real firmware says so ("SD busy", 409)."""


@dataclass
class GcodeJob:
    file: str
    print_seconds: float  # printer time, before the time scale
    total_layers: int
    run_seconds: float  # real seconds


class GcodeMachine:
    def __init__(self, time_scale: float, on_change: Callable[[], None]) -> None:
        self.time_scale = time_scale
        self.on_change = on_change
        self.state = STANDBY
        self.job: GcodeJob | None = None
        self.message = ""
        self.files: dict[str, bytes] = {}
        self.print_seconds_override: float | None = None
        self.refuse_next: str | None = None
        self.pause_at_percent: float | None = None
        self._elapsed = 0.0
        self._resumed_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.prints_started = 0

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # views ---------------------------------------------------------------------------------------
    def fraction(self) -> float:
        job = self.job
        if job is None:
            return 0.0
        if self.state == COMPLETE:
            return 1.0
        elapsed = self._elapsed + (self._now() - self._resumed_at if self.state == PRINTING else 0.0)
        return max(0.0, min(1.0, elapsed / job.run_seconds))

    def print_duration(self) -> float:
        """Printer seconds spent printing so far (what firmware reports)."""
        job = self.job
        return self.fraction() * job.print_seconds if job else 0.0

    def remaining_seconds(self) -> float:
        job = self.job
        return max(0.0, (1 - self.fraction()) * job.print_seconds) if job else 0.0

    def layer(self) -> int:
        job = self.job
        if job is None or self.state not in ACTIVE:
            return 0
        return max(1, math.ceil(self.fraction() * job.total_layers))

    # commands ------------------------------------------------------------------------------------
    def store(self, name: str, data: bytes) -> None:
        self.files[name] = data

    def start(self, name: str) -> None:
        """Start a stored file; raises `Busy` while printing and `JobRefused` for a file it cannot print."""
        if self.state in ACTIVE:
            raise Busy("printer is busy")
        plate = inspect_gcode(name, self.files.get(name))
        if self.refuse_next is not None:
            reason, self.refuse_next = self.refuse_next, None
            raise JobRefused(0, reason)
        run = self.print_seconds_override or plate.print_seconds / self.time_scale
        self.job = GcodeJob(name, plate.print_seconds, plate.total_layers, max(0.01, run))
        self.state, self.message = PRINTING, ""
        self._elapsed, self._resumed_at = 0.0, self._now()
        self.prints_started += 1
        log.info("starts %s", name)
        self._changed()

    def pause(self, message: str = "") -> bool:
        if self.state != PRINTING:
            return self.state == PAUSED
        self._elapsed += self._now() - self._resumed_at
        self.state, self.message = PAUSED, message
        self._changed()
        return True

    def resume(self) -> bool:
        if self.state != PAUSED:
            return self.state == PRINTING
        self.state, self.message = PRINTING, ""
        self._resumed_at = self._now()
        self._changed()
        return True

    def cancel(self) -> bool:
        if self.state not in ACTIVE:
            return False
        self._freeze()
        self.state, self.message = CANCELLED, ""
        self._changed()
        return True

    def fail(self, message: str) -> None:
        """The print dies with an error (thermal runaway, a G-code error, a shutdown)."""
        if self.state in ACTIVE:
            self._freeze()
            self.state = ERROR
        self.message = message
        self._changed()

    def finish_now(self) -> None:
        if self.state in ACTIVE and self.job is not None:
            self._elapsed, self._resumed_at = self.job.run_seconds, self._now()
            self._complete()

    def power_loss(self) -> None:
        """Back to standby with the job forgotten; the files stay."""
        self._cancel_timer()
        self.job, self.state, self.message = None, STANDBY, ""
        self._elapsed = 0.0

    def stop(self) -> None:
        self._cancel_timer()

    # timers --------------------------------------------------------------------------------------
    def _freeze(self) -> None:
        if self.state == PRINTING:
            self._elapsed += self._now() - self._resumed_at
            self._resumed_at = self._now()

    def _complete(self) -> None:
        self._freeze()
        self.state = COMPLETE
        log.info("finished %s", self.job.file if self.job else "?")
        self._changed()

    def _changed(self) -> None:
        self._schedule()
        self.on_change()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._cancel_timer()
        job = self.job
        if self.state != PRINTING or job is None:
            return
        target = 1.0
        if self.pause_at_percent is not None:
            target = min(1.0, self.pause_at_percent / 100)
        due = self._resumed_at + target * job.run_seconds - self._elapsed
        self._timer = asyncio.get_running_loop().call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.state != PRINTING:
            return
        if self.pause_at_percent is not None and self.fraction() < 1.0:
            self.pause_at_percent = None
            self.pause("filament runout")
            return
        self._complete()
