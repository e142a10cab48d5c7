"""A Bambu printer's print lifecycle (IDLE → PREPARE → RUNNING ⇄ PAUSE → FINISH or FAILED → IDLE) as a state
machine over the event loop's clock: every method is told the time, so it holds no timers and does no I/O,
and the printer decides when to look (a timer at `next_transition`, a command, a report)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from printer_simulator.catalog import EXTERNAL_SLOT, MaterialSpec
from printer_simulator.project import JobRefused

log = logging.getLogger(__name__)

IDLE, PREPARE, RUNNING, PAUSE, FINISH, FAILED = "IDLE", "PREPARE", "RUNNING", "PAUSE", "FINISH", "FAILED"
ACTIVE_STATES = frozenset({PREPARE, RUNNING, PAUSE})

PRINT_ERROR_CANCELLED = 0x0300_400C  # 50348044: the task was cancelled
PRINT_ERROR_REFUSED = 0x0500_4003
PRINT_ERROR_FILAMENT_RUNOUT = 0x0700_8011
HMS_FILAMENT_RUNOUT: dict[str, int] = {"attr": 0x0700_2000, "code": 0x0002_0001}

PREPARE_SIM_SECONDS = 120.0
"""Heating and levelling before the first layer, in printer time (scaled like the print)."""
STOP_TO_IDLE_SECONDS = 1.0
"""A stopped printer shows FAILED + 0300_400C for this long (real seconds) before IDLE."""
_EPSILON = 1e-3


@dataclass
class Job:
    file: str
    url: str
    param: str
    subtask_name: str
    ams_mapping: list[int]
    use_ams: bool
    print_seconds: float  # printer time, before the time scale
    total_layers: int
    refused: JobRefused | None
    ids: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "url": self.url,
            "param": self.param,
            "subtask_name": self.subtask_name,
            "ams_mapping": self.ams_mapping,
            "use_ams": self.use_ams,
            "print_seconds": self.print_seconds,
            "total_layers": self.total_layers,
            "refused_reason": self.refused.reason if self.refused else None,
        }


class PrintLifecycle:
    """One printer's print: its state, its job and progress, and every print started (`starts`).

    A filament run-out armed on the print (`hms_at`, a percentage) pauses it with the error and HMS entries
    `run_out` gives when it happens."""

    def __init__(
        self,
        serial: str,
        materials: tuple[MaterialSpec, ...],
        run_out: Callable[[], tuple[int, list[dict[str, int]]]],
    ) -> None:
        self.serial = serial
        self.run_out = run_out
        self.materials = materials
        """The spools loaded; the first print of an AMS job takes its tray from them."""
        self.starts: list[dict[str, Any]] = []
        """Every accepted `project_file`, never trimmed: what a test counts to find a print started twice."""
        self.reset()

    def reset(self) -> None:
        """IDLE with no job, as after power-up; `starts` is kept."""
        self.gcode_state = IDLE
        self.job: Job | None = None
        self.print_error = 0
        self.hms: list[dict[str, int]] = []
        self.tray_now = 255
        self.hms_at: float | None = None
        self._phase_started = 0.0
        self._prepare_duration = 0.0
        self._run_duration = 1.0
        self._run_elapsed = 0.0
        self._run_resumed_at = 0.0
        self._idle_at: float | None = None
        self._frozen: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def active(self) -> bool:
        return self.gcode_state in ACTIVE_STATES

    # reading ----------------------------------------------------------------------------------------------
    def run_fraction(self, now: float) -> float:
        elapsed = self._run_elapsed
        if self.gcode_state == RUNNING:
            elapsed += now - self._run_resumed_at
        return max(0.0, min(1.0, elapsed / self._run_duration))

    def progress(self, now: float) -> tuple[int, int, int, int]:
        """``mc_percent``, ``mc_remaining_time`` (minutes), ``layer_num``, prepare percent."""
        job, state = self.job, self.gcode_state
        if job is None or state == IDLE:
            return 0, 0, 0, 0
        total_minutes = math.ceil(job.print_seconds / 60)
        if state == PREPARE:
            elapsed = (now - self._phase_started) / self._prepare_duration if self._prepare_duration else 1.0
            return 0, total_minutes, 0, int(100 * min(1.0, max(0.0, elapsed)))
        if state in (RUNNING, PAUSE):
            fraction = self.run_fraction(now)
            remaining = math.ceil(job.print_seconds * (1 - fraction) / 60)
            layer = max(1, math.ceil(fraction * job.total_layers))
            return min(99, int(fraction * 100)), remaining, layer, 100
        if state == FINISH:
            return 100, 0, job.total_layers, 100
        return self._frozen

    def next_transition(self) -> float | None:
        """When the state changes by itself next (loop time), if it does."""
        if self.gcode_state == PREPARE:
            return self._phase_started + self._prepare_duration
        if self.gcode_state == RUNNING:
            target = 1.0 if self.hms_at is None else min(1.0, self.hms_at / 100)
            # Not before the run resumed: a run-out armed for 50 % that a pause at 55 % overtook happens as the
            # run resumes, at 55 %, not back at 50 % (progress never runs backwards).
            return max(self._run_resumed_at, self._run_resumed_at + target * self._run_duration - self._run_elapsed)
        if self.gcode_state == FAILED:
            return self._idle_at
        return None

    # time passing ---------------------------------------------------------------------------------------
    def advance(self, now: float) -> bool:
        """Applies every transition due by ``now``; True if the state changed."""
        changed = False
        for _ in range(4):
            due = self.next_transition()
            if due is None or now + _EPSILON < due:
                break
            changed = True
            job = self.job
            if self.gcode_state == PREPARE and job is not None:
                if job.refused is not None:
                    self._fail(job.refused.print_error, due, idle_after=None)
                    log.info("%s refused %s: %s", self.serial, job.file, job.refused.reason)
                else:
                    self._start_running(due)
            elif self.gcode_state == RUNNING and self.hms_at is not None and self.run_fraction(due) < 1.0:
                self._run_elapsed += due - self._run_resumed_at
                self.hms_at = None
                self.gcode_state = PAUSE
                print_error, entries = self.run_out()
                self.print_error = print_error
                self.hms = [dict(entry) for entry in entries]
                log.info("%s paused by HMS (filament run-out)", self.serial)
            elif self.gcode_state == RUNNING:
                self._run_elapsed = self._run_duration
                self.gcode_state = FINISH
                self._record_outcome("finished")
                log.info("%s finished %s", self.serial, job.file if job else "?")
            elif self.gcode_state == FAILED:
                self._idle_at = None
                self.gcode_state = IDLE
                self.print_error = 0
        return changed

    # what commands and faults do --------------------------------------------------------------------------
    def start(self, job: Job, now: float, *, prepare_seconds: float, run_seconds: float, hms_at: float | None) -> None:
        """A new print enters PREPARE (the caller has checked that none is active)."""
        self.job = job
        self.gcode_state = PREPARE
        self.print_error = 0
        self.hms = []
        self._idle_at = None
        self._phase_started = now
        self._prepare_duration = prepare_seconds
        self._run_duration = run_seconds
        self.hms_at = hms_at

    def pause(self, now: float) -> bool:
        """Pauses a running print; False if none was running."""
        if self.gcode_state != RUNNING:
            return False
        self._run_elapsed += now - self._run_resumed_at
        self.gcode_state = PAUSE
        return True

    def resume(self, now: float) -> bool:
        """Continues a paused print (after a user pause or an HMS stop); False if nothing was paused."""
        if self.gcode_state != PAUSE:
            return False
        self.gcode_state = RUNNING
        self._run_resumed_at = now
        self.print_error = 0
        self.hms = []
        return True

    def cancel(self, now: float) -> bool:
        """Stops an active print: FAILED with 0300_400C, IDLE a moment later; False if none was active."""
        if not self.active:
            return False
        if self.gcode_state == RUNNING:
            self._run_elapsed += now - self._run_resumed_at
            self.gcode_state = PAUSE  # freeze progress before it is captured
        self._fail(PRINT_ERROR_CANCELLED, now, idle_after=STOP_TO_IDLE_SECONDS)
        return True

    def arm_run_out(self, now: float, at_percent: float | None) -> bool:
        """Arms a run-out on the print under way: now (or at ``at_percent``) when running, at 50 % (or
        ``at_percent``) when preparing. False otherwise (idle, paused, ended): it is for the next print then."""
        if self.gcode_state == RUNNING:
            current = self.run_fraction(now) * 100
            at = current if at_percent is None or at_percent <= current else at_percent
        elif self.gcode_state == PREPARE:
            at = 50.0 if at_percent is None else at_percent
        else:
            return False
        self.hms_at = at
        return True

    def disarm_run_out(self) -> None:
        self.hms_at = None

    def end_prepare(self, now: float) -> bool:
        """Makes PREPARE end now (it ends at the next `advance`); False if not preparing."""
        if self.gcode_state != PREPARE:
            return False
        self._prepare_duration = now - self._phase_started
        return True

    def end_run(self, now: float) -> bool:
        """Makes a running or paused print end now, clearing a run-out (it ends at the next `advance`);
        False if none is running or paused."""
        if self.gcode_state not in (RUNNING, PAUSE):
            return False
        if self.gcode_state == PAUSE:
            self.gcode_state = RUNNING
            self.hms, self.print_error = [], 0
        self.hms_at = None
        self._run_resumed_at = now - self._run_duration
        self._run_elapsed = 0.0
        return True

    def power_lost(self) -> None:
        """The print under way, if any, ends as `power_lost` (the printer forgets it when it is `reset`)."""
        if self.active:
            self._record_outcome("power_lost")

    def record_start(self, at: str) -> None:
        assert self.job is not None
        self.starts.append({"subtask_name": self.job.subtask_name, "file": self.job.file, "at": at, "outcome": None})

    # inside ---------------------------------------------------------------------------------------------
    def _start_running(self, at: float) -> None:
        job = self.job
        assert job is not None
        self.gcode_state = RUNNING
        self._run_elapsed = 0.0
        self._run_resumed_at = at
        mapped = [slot for slot in job.ams_mapping if slot >= 0]
        if job.use_ams and mapped:
            tray = mapped[0]
        elif job.use_ams and any(m.slot != EXTERNAL_SLOT for m in self.materials):
            tray = min(m.slot for m in self.materials if m.slot != EXTERNAL_SLOT)
        else:
            tray = EXTERNAL_SLOT
        self.tray_now = tray

    def _fail(self, print_error: int, at: float, *, idle_after: float | None) -> None:
        self._record_outcome("failed")
        self._frozen = self.progress(at)
        self.gcode_state = FAILED
        self.print_error = print_error
        self.hms = []
        self.hms_at = None
        self._idle_at = at + idle_after if idle_after is not None else None

    def _record_outcome(self, outcome: str) -> None:
        if self.starts and self.starts[-1]["outcome"] is None:
            self.starts[-1]["outcome"] = outcome
