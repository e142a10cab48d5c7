"""The printer aggregate: what the operator registered, what the printer last said, and the print
lifecycle that turns the latter into job outcomes. Pure: no I/O, time passed in."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from printer_gateway.domain.errors import AccessCodeRequired as AccessCodeRequired
from printer_gateway.domain.errors import PrinterError as PrinterError
from printer_gateway.domain.lifecycle import (
    BedNoLongerClear,
    DispatchTimedOut,
    LifecycleError,
    LifecycleEvent,
    PrintAborted,
    PrintCancelled,
    PrintCompleted,
    PrintFailed,
    PrintPaused,
    PrintProgressed,
    PrintResumed,
    PrintStarted,
    PrintTracker,
)
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus

PrintOutcomeStatus = Literal["started", "printing", "paused", "completed", "failed", "cancelled", "not_started"]

PROTOCOLS = ("bambu_lan", "moonraker", "octoprint", "prusalink")
PRINTABLE_KINDS = {
    "bambu_lan": frozenset({"gcode.3mf"}),
    "moonraker": frozenset({"gcode"}),
    "octoprint": frozenset({"gcode"}),
    "prusalink": frozenset({"gcode"}),
}
"""What each protocol's printers accept as they are: a Bambu printer needs a sliced `.gcode.3mf`, the
others plain G-code sliced for them."""


class UnprintableFile(PrinterError):
    """The job's file can never print on this kind of printer as it is (unlike a busy or offline printer)."""


SECRET_BOUND_FIELDS = ("host", "port", "ftp_port", "camera_port", "serial", "ca_cert")
"""Where the access code (or API key) is sent and whom it is trusted to: changing any of them without the
secret would let whoever may edit a printer have the stored secret delivered to a host of their choosing."""


def secret_field_of(protocol: str) -> str:
    """What the printer's secret is called on the API: a Bambu access code, else an API key."""
    return "access_code" if protocol == "bambu_lan" else "api_key"


def unprintable_reason(protocol: str, model: str, file_kind: str) -> str | None:
    """Why a file of `file_kind` can never print as it is on this kind of printer, or None if it can."""
    if file_kind in PRINTABLE_KINDS.get(protocol, frozenset()):
        return None
    if protocol == "bambu_lan":
        return f"a {model} printer cannot print a .{file_kind} file as it is: it needs a sliced .gcode.3mf"
    if file_kind == "gcode.3mf":
        return (
            f"a .gcode.3mf is sliced for a Bambu printer and never goes to a {model} ({protocol}) printer: "
            "it prints plain .gcode sliced for its model"
        )
    return f"a {model} ({protocol}) printer cannot print a .{file_kind} file as it is: it needs .gcode sliced for it"


@dataclass(frozen=True)
class PrintOutcome:
    """One step of a dispatched job, as the queue must hear it."""

    job_id: str
    status: PrintOutcomeStatus
    progress_percent: float | None = None
    error: str | None = None


@dataclass
class Printer:
    id: str
    name: str
    model: str
    protocol: str
    host: str
    port: int
    ftp_port: int
    serial: str | None
    tags: list[str]
    fabmatic: bool
    ca_cert: str | None
    created_at: datetime
    updated_at: datetime
    tracker: PrintTracker
    status: PrinterStatus = field(default_factory=PrinterStatus.offline)
    current_command_id: str | None = None
    job_sequence: int = 0
    revision: int = 0
    idle_since: datetime | None = None
    connection_version: int = 1
    lease_epoch: int = 0
    owner: str | None = None
    note: str | None = None
    deleted: bool = False
    operator_materials: tuple[LoadedMaterial, ...] = ()
    """What the operator says is loaded, for printers that do not report their filament."""
    camera_port: int | None = None
    """A Bambu P1/A1 camera's port when it is not the standard 6000."""

    @property
    def bed_clear(self) -> bool:
        return self.tracker.bed_clear

    @property
    def materials(self) -> tuple[LoadedMaterial, ...]:
        """What the printer reports (AMS, Spoolman) wins; a printer that reports nothing holds what the
        operator said."""
        return self.status.materials or self.operator_materials

    @property
    def secret_field(self) -> str:
        return secret_field_of(self.protocol)

    def require_access_code_for(self, changes: dict[str, object], access_code_given: bool) -> None:
        """A stored secret is never sent to a new address: a change to a field that decides where the
        access code or API key goes (or which certificate vouches for the receiver) must bring it again."""
        moved = [name for name in SECRET_BOUND_FIELDS if name in changes and changes[name] != getattr(self, name)]
        if moved and not access_code_given:
            raise AccessCodeRequired(moved, self.secret_field)

    @property
    def current_job_id(self) -> str | None:
        return self.tracker.job.job_id if self.tracker.job else None

    @property
    def ready(self) -> bool:
        """Could take a job right now."""
        return (
            self.status.online
            and self.status.state in ("idle", "finished")
            and self.bed_clear
            and self.current_job_id is None
        )

    @property
    def error(self) -> str | None:
        return self.status.error_reason if self.status.state in ("error", "offline") else None

    def snapshot(self) -> tuple[object, ...]:
        """What consumers see; a change of it is worth an event."""
        s = self.status
        return (
            self.name,
            tuple(self.tags),
            self.fabmatic,
            s.online,
            s.state,
            self.error,
            self.bed_clear,
            self.materials,
            self.current_job_id,
            s.progress_percent if self.current_job_id else None,
            self.deleted,
        )

    def observe(self, status: PrinterStatus, now: datetime) -> list[PrintOutcome]:
        self.status = status
        tracker, events = self.tracker.observe(status, now)
        self.tracker = tracker
        return self._apply(events, now)

    def check_deadline(self, now: datetime) -> list[PrintOutcome]:
        tracker, events = self.tracker.check_deadline(now)
        self.tracker = tracker
        return self._apply(events, now)

    def dispatch(self, job_id: str, command_id: str, file_kind: str, now: datetime, deadline: timedelta) -> None:
        """Start tracking `job_id`; raises `PrinterError` with the reason it cannot go to this printer."""
        unprintable = unprintable_reason(self.protocol, self.model, file_kind)
        if unprintable is not None:
            raise UnprintableFile(unprintable)
        if not self.status.online:
            raise PrinterError("printer is offline")
        if self.status.state not in ("idle", "finished"):
            raise PrinterError(f"printer is {self.status.state}")
        try:
            self.tracker = self.tracker.dispatch(job_id, now, now + deadline)
        except LifecycleError as exc:
            raise PrinterError(str(exc)) from exc
        self.current_command_id = command_id
        self.idle_since = None

    def dispatch_failed(self, job_id: str) -> None:
        """The upload or the start command failed: nothing was printed, the queue may retry elsewhere."""
        if self.current_job_id != job_id:
            return
        self.tracker = self.tracker.release()
        self.current_command_id = None

    def clear_bed(self, now: datetime) -> None:
        if self.current_job_id is not None and self.tracker.job is not None and self.tracker.job.started:
            raise PrinterError(f"printer is printing job {self.current_job_id}")
        self.tracker = self.tracker.clear_bed()
        self._refresh_idle_since(now)

    def _apply(self, events: tuple[LifecycleEvent, ...], now: datetime) -> list[PrintOutcome]:
        outcomes: list[PrintOutcome] = []
        for event in events:
            outcome = _outcome(event)
            if outcome is not None:
                outcomes.append(outcome)
            if isinstance(event, BedNoLongerClear) and self.fabmatic:
                self._fabmatic_after_print(event, events)
        if self.fabmatic and self.current_job_id and self.status.state in ("error", "offline"):
            self._switch_off_fabmatic(f"FabMatic switched off: printer {self.status.state} during a print")
        if self.tracker.job is None:
            self.current_command_id = None
        self._refresh_idle_since(now)
        return outcomes

    def _fabmatic_after_print(self, bed: BedNoLongerClear, events: tuple[LifecycleEvent, ...]) -> None:
        """FabMatic's end G-code clears the bed, but only after a good print: an error needs a human."""
        failed = [e for e in events if isinstance(e, PrintFailed | PrintAborted)]
        if failed or self.status.state == "error":
            self._switch_off_fabmatic("FabMatic switched off: the print ended with an error")
            return
        self.tracker = self.tracker.clear_bed()

    def _switch_off_fabmatic(self, why: str) -> None:
        self.fabmatic = False
        self.note = why

    def _refresh_idle_since(self, now: datetime) -> None:
        if not self.ready:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = now

    def updated(self, now: datetime) -> None:
        self.revision += 1
        self.updated_at = now

    def next_sequence(self) -> int:
        self.job_sequence += 1
        return self.job_sequence

    def with_registration(self, **changes: object) -> Printer:
        return replace(self, **changes)  # type: ignore[arg-type]


def _outcome(event: LifecycleEvent) -> PrintOutcome | None:
    match event:
        case PrintStarted(job_id=job_id):
            return PrintOutcome(job_id, "started")
        case PrintProgressed(job_id=job_id, percent=percent):
            return PrintOutcome(job_id, "printing", progress_percent=float(percent) if percent is not None else None)
        case PrintPaused(job_id=job_id, reason=reason):
            return PrintOutcome(job_id, "paused", error=reason)
        case PrintResumed(job_id=job_id):
            return PrintOutcome(job_id, "printing")
        case PrintCompleted(job_id=job_id):
            return PrintOutcome(job_id, "completed", progress_percent=100.0)
        case PrintFailed(job_id=job_id, reason=reason):
            return PrintOutcome(job_id, "failed", error=reason)
        case PrintAborted(job_id=job_id, reason=reason):
            return PrintOutcome(job_id, "failed", error=reason)
        case PrintCancelled(job_id=job_id, reason=reason):
            return PrintOutcome(job_id, "cancelled", error=reason)
        case DispatchTimedOut(job_id=job_id):
            return PrintOutcome(job_id, "not_started", error="the printer did not start the job before the deadline")
    return None
