"""Print lifecycle of one printer: turns successive statuses into job events and the bed-clear flag.

It reads `PrinterStatus.gcode_state`, the print phase in Bambu's words (`IDLE`, `PREPARE`, `RUNNING`,
`PAUSE`, `FINISH`, `FAILED`) plus `CANCELLED` for printers that say so themselves; every driver
translates its printer's states into these.

Pure and persisted by the service layer after every step, so a restarted gateway resumes exactly where
it was: it only reports a job finished if it was still tracking that job when the FINISH arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from printer_gateway.domain.printer_status import PrinterStatus

ACTIVE_STATES = frozenset({"PREPARE", "SLICING", "RUNNING", "PAUSE"})
"""A dispatch counts as started once the printer is in one of these for our job."""
STARTING_STATES = frozenset({"PREPARE", "SLICING"})
PART_LEFT_STATES = frozenset({"FINISH", "FAILED", "CANCELLED"})
IDLE_STATES = frozenset({"IDLE", "INIT"})
CANCELLED_PRINT_ERROR = 0x0300400C


@dataclass(frozen=True)
class LifecycleEvent:
    printer_id: str


@dataclass(frozen=True)
class JobEvent(LifecycleEvent):
    job_id: str


@dataclass(frozen=True)
class PrintStarted(JobEvent):
    pass


@dataclass(frozen=True)
class PrintProgressed(JobEvent):
    percent: int | None
    remaining_minutes: int | None
    layer: int | None
    total_layers: int | None


@dataclass(frozen=True)
class PrintPaused(JobEvent):
    reason: str | None


@dataclass(frozen=True)
class PrintResumed(JobEvent):
    pass


@dataclass(frozen=True)
class JobEnded(JobEvent):
    """Terminal: the tracker forgets the job after emitting one of these."""


@dataclass(frozen=True)
class PrintCompleted(JobEnded):
    pass


@dataclass(frozen=True)
class PrintFailed(JobEnded):
    reason: str
    refused: bool
    """The printer gave up in PREPARE/SLICING: nothing was printed, the job can go elsewhere."""


@dataclass(frozen=True)
class PrintCancelled(JobEnded):
    reason: str


@dataclass(frozen=True)
class PrintAborted(JobEnded):
    """The printer went back to IDLE mid-print without saying why (stopped at the screen, power cut)."""

    reason: str


@dataclass(frozen=True)
class DispatchTimedOut(JobEnded):
    """The printer never started the job before the deadline; it was not printed by us."""


@dataclass(frozen=True)
class BedNoLongerClear(LifecycleEvent):
    """A print ended on this printer (ours when `job_id` is set); nothing may start until cleared."""

    job_id: str | None


class LifecycleError(Exception):
    pass


class BedNotClear(LifecycleError):
    pass


class PrinterBusy(LifecycleError):
    pass


@dataclass(frozen=True)
class TrackedJob:
    job_id: str
    dispatched_at: datetime
    start_deadline: datetime
    started: bool = False
    paused: bool = False
    last_gcode_state: str | None = None
    progress: tuple[int | None, int | None, int | None, int | None] | None = None


Step = tuple["PrintTracker", tuple[LifecycleEvent, ...]]


@dataclass(frozen=True)
class PrintTracker:
    """State of one printer's print lifecycle; every method returns a new tracker and the events."""

    printer_id: str
    bed_clear: bool
    job: TrackedJob | None = None
    last_gcode_state: str | None = None
    last_subtask: str | None = None
    last_print_error: int | None = None

    def dispatch(self, job_id: str, now: datetime, start_deadline: datetime) -> PrintTracker:
        """Start tracking a job we are about to send; refused on an occupied bed or a tracked job."""
        if not self.bed_clear:
            raise BedNotClear(f"printer {self.printer_id}: bed not clear")
        if self.job is not None:
            raise PrinterBusy(f"printer {self.printer_id}: already tracking job {self.job.job_id}")
        return replace(self, job=TrackedJob(job_id, now, start_deadline))

    def release(self) -> PrintTracker:
        """Stop tracking a job whose dispatch failed before the printer could have accepted it."""
        return replace(self, job=None)

    def clear_bed(self) -> PrintTracker:
        return replace(self, bed_clear=True)

    def check_deadline(self, now: datetime) -> Step:
        job = self.job
        if job is None or job.started or now < job.start_deadline:
            return self, ()
        return replace(self, job=None), (DispatchTimedOut(self.printer_id, job.job_id),)

    def observe(self, status: PrinterStatus, now: datetime) -> Step:
        """Apply one status; offline statuses change nothing, since the printer may still be printing."""
        gcode_state = status.gcode_state.upper() if status.gcode_state else None
        if not status.online or gcode_state is None:
            return self.check_deadline(now)
        events: list[LifecycleEvent] = []
        tracker = self
        if tracker.job is not None:
            ended_unseen = self._print_ended_unseen(gcode_state, status.subtask_name)
            job, job_events = _follow_job(
                self.printer_id, tracker.job, status, gcode_state, self.last_print_error, ended_unseen
            )
            tracker = replace(tracker, job=job)
            events.extend(job_events)
        job_ended = next((e for e in events if isinstance(e, JobEnded)), None)
        if tracker.bed_clear and (job_ended is not None or self._print_ended(gcode_state, status.subtask_name)):
            tracker = replace(tracker, bed_clear=False)
            events.append(BedNoLongerClear(self.printer_id, job_ended.job_id if job_ended else None))
        tracker = replace(
            tracker,
            last_gcode_state=gcode_state,
            last_subtask=status.subtask_name,
            last_print_error=status.print_error,
        )
        tracker, timed_out = tracker.check_deadline(now)
        return tracker, (*events, *timed_out)

    def _print_ended_unseen(self, gcode_state: str, subtask: str | None) -> bool:
        """The printer shows a print ended that this tracker never saw running: it began and ended while the
        gateway was away (killed right after sending `project_file`) or between two reports. Not the end
        it already saw (after a retry, the printer still shows the failed attempt until the new one starts)."""
        return gcode_state in PART_LEFT_STATES and (self.last_gcode_state, self.last_subtask) != (gcode_state, subtask)

    def _print_ended(self, gcode_state: str, subtask: str | None) -> bool:
        """Any end of any print, ours or not: also one that happened entirely while we were away."""
        previous = self.last_gcode_state
        if previous is None:
            return False
        if gcode_state in PART_LEFT_STATES:
            return (previous, self.last_subtask) != (gcode_state, subtask)
        return gcode_state in IDLE_STATES and previous in ACTIVE_STATES

    def as_record(self) -> dict[str, Any]:
        """JSON-friendly form for persistence."""
        job = self.job
        return {
            "printer_id": self.printer_id,
            "bed_clear": self.bed_clear,
            "last_gcode_state": self.last_gcode_state,
            "last_subtask": self.last_subtask,
            "last_print_error": self.last_print_error,
            "job": None
            if job is None
            else {
                "job_id": job.job_id,
                "dispatched_at": job.dispatched_at.isoformat(),
                "start_deadline": job.start_deadline.isoformat(),
                "started": job.started,
                "paused": job.paused,
                "last_gcode_state": job.last_gcode_state,
                "progress": list(job.progress) if job.progress is not None else None,
            },
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PrintTracker:
        raw_job = record.get("job")
        job = None
        if raw_job is not None:
            progress = raw_job.get("progress")
            job = TrackedJob(
                job_id=raw_job["job_id"],
                dispatched_at=datetime.fromisoformat(raw_job["dispatched_at"]),
                start_deadline=datetime.fromisoformat(raw_job["start_deadline"]),
                started=bool(raw_job.get("started", False)),
                paused=bool(raw_job.get("paused", False)),
                last_gcode_state=raw_job.get("last_gcode_state"),
                progress=(progress[0], progress[1], progress[2], progress[3]) if progress else None,
            )
        return cls(
            printer_id=record["printer_id"],
            bed_clear=bool(record["bed_clear"]),
            job=job,
            last_gcode_state=record.get("last_gcode_state"),
            last_subtask=record.get("last_subtask"),
            last_print_error=record.get("last_print_error"),
        )


def _follow_job(
    printer_id: str,
    job: TrackedJob,
    status: PrinterStatus,
    gcode_state: str,
    previous_error: int | None,
    ended_unseen: bool,
) -> tuple[TrackedJob | None, list[LifecycleEvent]]:
    events: list[LifecycleEvent] = []
    ours = status.subtask_name == job.job_id
    if not job.started:
        # Our print already over when first seen still started: left waiting, the dispatch deadline
        # would call it "not started" and the queue would print it a second time.
        if not (ours and (gcode_state in ACTIVE_STATES or ended_unseen)):
            return job, events
        job = replace(job, started=True)
        events.append(PrintStarted(printer_id, job.job_id))
    job_id = job.job_id
    if gcode_state == "FINISH" and ours:
        return None, [*events, PrintCompleted(printer_id, job_id)]
    if gcode_state == "CANCELLED" and (ours or status.subtask_name is None):
        return None, [*events, PrintCancelled(printer_id, job_id, status.error_reason or "cancelled on the printer")]
    if _cancelled(status.print_error, previous_error, gcode_state):
        return None, [*events, PrintCancelled(printer_id, job_id, "cancelled (print error 0300_400C)")]
    if not ours and status.subtask_name is not None and gcode_state not in IDLE_STATES:
        reason = f"printer moved on to another print ({status.subtask_name!r}) before reporting this one"
        return None, [*events, PrintFailed(printer_id, job_id, reason, refused=False)]
    if gcode_state == "FINISH":
        return None, [*events, PrintCompleted(printer_id, job_id)]
    if gcode_state == "FAILED":
        refused = job.last_gcode_state in STARTING_STATES
        reason = status.error_reason or "print failed"
        if refused:
            reason = f"printer refused the job in {job.last_gcode_state}: {reason}"
        return None, [*events, PrintFailed(printer_id, job_id, reason, refused=refused)]
    if gcode_state in IDLE_STATES:
        reason = f"printer went from {job.last_gcode_state or 'printing'} to {gcode_state} without finishing"
        return None, [*events, PrintAborted(printer_id, job_id, reason)]
    if gcode_state not in ACTIVE_STATES:
        return job, events
    if gcode_state == "PAUSE" and not job.paused:
        job = replace(job, paused=True)
        events.append(PrintPaused(printer_id, job_id, status.error_reason))
    elif gcode_state != "PAUSE" and job.paused:
        job = replace(job, paused=False)
        events.append(PrintResumed(printer_id, job_id))
    progress = (status.progress_percent, status.remaining_minutes, status.layer, status.total_layers)
    if progress != job.progress:
        job = replace(job, progress=progress)
        events.append(PrintProgressed(printer_id, job_id, *progress))
    return replace(job, last_gcode_state=gcode_state), events


def _cancelled(print_error: int | None, previous_error: int | None, gcode_state: str) -> bool:
    """0300_400C means cancelled when it appears, or once the print stopped; one left over from an
    earlier cancel must not cancel the next job while it runs."""
    if print_error != CANCELLED_PRINT_ERROR:
        return False
    return previous_error != CANCELLED_PRINT_ERROR or gcode_state not in ACTIVE_STATES
