"""A job's life after it was queued: dispatch, the printer's reports, deadlines and operator actions.

A job is `printing` only once its printer says it started. Terminal states are sticky except for an
operator's retry. Reports of a printer about a job that is not (or no longer) dispatched to it never
change the job; if that printer is actually running the job, it is told to stop.

A gateway that refuses a dispatch before the printer ever saw it (unknown printer, printer busy or
offline, a file that kind of printer cannot print) answers with `sequence` 0: outside the printer's
report sequence, so it is matched to the dispatch by its `command_id` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from printqueue.domain.errors import TransitionForbidden
from printqueue.domain.model import ACTIVE, TERMINAL, Job, Printer, Priority

PrintStatus = Literal["started", "printing", "paused", "completed", "failed", "cancelled", "not_started"]
RUNNING_REPORTS = frozenset({"started", "printing", "paused"})


@dataclass(frozen=True)
class DispatchPolicy:
    deadline_seconds: float = 90.0
    """The watchdog: a dispatch the printer has not acknowledged (started) by then is given up."""
    max_dispatch_attempts: int = 3
    printer_cooldown_seconds: float = 60.0
    deadline_grace_seconds: float = 15.0
    """The gateway gets `deadline_seconds` to report the start (or not_started); the queue waits a bit longer."""


@dataclass(frozen=True)
class PrintReport:
    job_id: str
    printer_id: str
    status: PrintStatus
    sequence: int
    occurred_at: datetime
    command_id: str | None = None
    progress_percent: float | None = None
    error: str | None = None


@dataclass
class Outcome:
    changed: bool = False
    """The job's visible state changed: save it and emit JobChanged."""
    stop_printer: str | None = None
    """Tell this printer to stop the job."""
    flag_printer: str | None = None
    """This printer failed to start a dispatch: leave it alone for a while."""
    started_on: str | None = None
    """The printer did start the job: clear its dispatch notes."""


def dispatch(job: Job, printer_id: str, command_id: str, now: datetime, policy: DispatchPolicy) -> None:
    job.status = "assigned"
    job.printer_id = printer_id
    job.command_id = command_id
    job.dispatch_attempts += 1
    job.dispatch_deadline = now + timedelta(seconds=policy.deadline_seconds + policy.deadline_grace_seconds)
    job.last_sequence = 0
    job.progress_percent = 0.0
    job.touch(now)


def give_back(job: Job, reason: str, now: datetime, policy: DispatchPolicy) -> None:
    """A dispatch that never started: back to the queue, or `failed` once the attempts are used up;
    cancelled instead when the order no longer wants the job."""
    job.command_id = None
    job.dispatch_deadline = None
    job.progress_percent = 0.0
    if not job.wanted:
        job.status, job.error, job.finished_at = "cancelled", "removed from the order", now
    elif job.dispatch_attempts >= policy.max_dispatch_attempts:
        job.status, job.finished_at = "failed", now
        job.error = f"not started after {job.dispatch_attempts} dispatch attempts: {reason}"
    else:
        job.status, job.error = "queued", reason
        job.printer_id = None
    job.touch(now)


def is_refusal(report: PrintReport) -> bool:
    """The gateway's answer to a dispatch it could not even hand to the printer."""
    return report.sequence == 0 and report.status in ("not_started", "failed")


def apply_refusal(job: Job, report: PrintReport, now: datetime, policy: DispatchPolicy) -> Outcome:
    """Acts only on the dispatch it answers (same printer and `command_id`) while that dispatch is still
    unacknowledged: a stale refusal of an earlier dispatch, or one that arrives after the printer
    reported the job running, changes nothing. `not_started` sends the job elsewhere (the printer is left
    alone for a while); `failed` means no printer of that kind can print the file: the job fails."""
    if (
        job.status != "assigned"
        or report.command_id is None
        or report.command_id != job.command_id
        or report.printer_id != job.printer_id
    ):
        return Outcome()
    if report.status == "not_started":
        printer_id = job.printer_id
        give_back(job, report.error or f"printer {printer_id} refused the job", now, policy)
        return Outcome(changed=True, flag_printer=printer_id)
    job.status, job.finished_at = "failed", report.occurred_at
    job.error = report.error or f"printer {job.printer_id} cannot print this job"
    job.command_id = None
    job.dispatch_deadline = None
    job.progress_percent = 0.0
    job.touch(now)
    return Outcome(changed=True)


def apply_print_report(job: Job, report: PrintReport, now: datetime, policy: DispatchPolicy) -> Outcome:
    if is_refusal(report):
        return apply_refusal(job, report, now, policy)
    outcome = Outcome()
    foreign = report.printer_id != job.printer_id or (
        report.command_id is not None and job.command_id is not None and report.command_id != job.command_id
    )
    if foreign or job.status not in ACTIVE:
        if report.status in RUNNING_REPORTS and (foreign or report.sequence > job.last_sequence):
            outcome.stop_printer = report.printer_id
        return outcome
    if report.sequence <= job.last_sequence:
        return outcome
    job.last_sequence = report.sequence
    before = (job.status, job.progress_percent, job.error)
    if report.progress_percent is not None:
        job.progress_percent = max(0.0, min(100.0, report.progress_percent))

    if report.status in ("started", "printing"):
        if job.status == "assigned":
            job.started_at = job.started_at or report.occurred_at
            job.dispatch_deadline = None
            outcome.started_on = job.printer_id
        elif job.status == "paused":
            job.error = None
        job.status = "printing"
    elif report.status == "paused":
        if job.status == "assigned":
            job.started_at = job.started_at or report.occurred_at
            job.dispatch_deadline = None
            outcome.started_on = job.printer_id
        job.status = "paused"
        job.error = report.error or job.error
    elif report.status == "completed":
        job.status, job.progress_percent, job.finished_at = "completed", 100.0, report.occurred_at
        job.error = None
    elif report.status == "failed":
        job.status, job.finished_at = "failed", report.occurred_at
        job.error = report.error or "the printer reported a failure"
    elif report.status == "cancelled":
        job.status, job.finished_at = "cancelled", report.occurred_at
        job.error = "cancelled by an operator" if job.cancel_requested else (report.error or "cancelled on the printer")
    elif report.status == "not_started":
        if job.status != "assigned":
            return outcome
        outcome.flag_printer = job.printer_id
        give_back(job, report.error or "the printer did not start the job", now, policy)
        outcome.changed = True
        return outcome
    if (job.status, job.progress_percent, job.error) != before or report.status in ("completed", "failed"):
        job.touch(now)
        outcome.changed = True
    return outcome


def expire_dispatch(job: Job, now: datetime, policy: DispatchPolicy) -> Outcome:
    """An assigned job whose printer did not start it before the deadline goes back to the queue."""
    if job.status != "assigned" or job.dispatch_deadline is None or job.dispatch_deadline > now:
        return Outcome()
    printer_id = job.printer_id
    give_back(job, f"printer {printer_id} did not start the job within {policy.deadline_seconds:g} s", now, policy)
    return Outcome(changed=True, stop_printer=printer_id, flag_printer=printer_id)


def flag_printer(printer: Printer, now: datetime, policy: DispatchPolicy) -> None:
    printer.dispatch_misses += 1
    printer.avoid_until = now + timedelta(seconds=policy.printer_cooldown_seconds * printer.dispatch_misses)


def clear_printer_flag(printer: Printer) -> None:
    printer.dispatch_misses = 0
    printer.avoid_until = None


def cancel_job(job: Job, now: datetime) -> Outcome:
    """Queued or assigned: cancelled at once. Printing or paused: the printer is told to stop and the job
    is cancelled when it reports so."""
    if job.status in TERMINAL:
        raise TransitionForbidden(f"job is already {job.status}")
    if job.status in ("printing", "paused"):
        job.cancel_requested = True
        job.touch(now)
        return Outcome(changed=True, stop_printer=job.printer_id)
    stop = job.printer_id if job.status == "assigned" else None
    job.status, job.error, job.finished_at = "cancelled", "cancelled by an operator", now
    job.dispatch_deadline = None
    job.touch(now)
    return Outcome(changed=True, stop_printer=stop)


def retry_job(job: Job, identity_taken: bool, now: datetime) -> None:
    """Failed or cancelled → queued, as a new attempt; never a second live job for one identity."""
    if job.status not in ("failed", "cancelled"):
        raise TransitionForbidden(f"only a failed or cancelled job can be retried; this one is {job.status}")
    if identity_taken:
        raise TransitionForbidden("another live job already prints this copy of the part")
    job.status = "queued"
    job.attempt += 1
    job.dispatch_attempts = 0
    job.wanted = True
    job.printer_id = job.command_id = job.error = None
    job.dispatch_deadline = job.started_at = job.finished_at = None
    job.progress_percent = 0.0
    job.last_sequence = 0
    job.cancel_requested = False
    job.touch(now)


def reject_job(job: Job, now: datetime) -> None:
    """An operator rejects a finished print: completed → failed (it can then be retried)."""
    if job.status != "completed":
        raise TransitionForbidden(f"only a completed job can be rejected; this one is {job.status}")
    job.status = "failed"
    job.error = "rejected by an operator"
    job.touch(now)


def set_priority(job: Job, priority: Priority, now: datetime) -> bool:
    """Allowed until the job is done for good; a failed or cancelled job keeps it for its retry."""
    if job.status == "completed":
        raise TransitionForbidden("the job is completed; its priority no longer matters")
    if job.priority == priority:
        return False
    job.priority = priority
    job.touch(now)
    return True
