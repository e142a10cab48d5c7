"""PrusaLink's `/api/v1/status` (and the job's file name from `/api/v1/job`) as a `PrinterStatus`. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from printer_gateway.domain.printer_status import PrinterState, PrinterStatus

PRINTER_STATES: Mapping[str, tuple[str | None, PrinterState]] = {
    "IDLE": ("IDLE", "idle"),
    "READY": ("IDLE", "idle"),
    "BUSY": (None, "printing"),
    "PRINTING": ("RUNNING", "printing"),
    "PAUSED": ("PAUSE", "paused"),
    "ATTENTION": ("PAUSE", "paused"),
    "FINISHED": ("FINISH", "finished"),
    "STOPPED": ("CANCELLED", "finished"),
    "ERROR": ("FAILED", "error"),
}
"""`printer.state` → the lifecycle's phase and the printer's state. `FINISHED` and `STOPPED` stay until
the next print: the printer is ready again once the operator cleared the bed. `BUSY` (calibrating, a
menu open) is no print phase and takes no job. `ATTENTION` is a print waiting for a human (run-out)."""


def job_name(display_name: object) -> str | None:
    """We upload `<job id>.gcode`; PrusaLink names it by its long `display_name`."""
    if not isinstance(display_name, str) or not display_name.strip():
        return None
    name = PurePosixPath(display_name.strip()).name
    return name[: -len(".gcode")] if name.lower().endswith(".gcode") else name


def parse_status(body: Mapping[str, Any], job_file: str | None) -> PrinterStatus:
    """Normalize `/api/v1/status`; tolerant of missing or malformed fields, never raises."""
    raw_printer = body.get("printer")
    printer: Mapping[str, Any] = raw_printer if isinstance(raw_printer, Mapping) else {}
    raw_state = printer.get("state")
    state_name = raw_state.upper() if isinstance(raw_state, str) else ""
    gcode_state, state = PRINTER_STATES.get(state_name, (None, "error"))
    job = body.get("job") if isinstance(body.get("job"), Mapping) else None
    if gcode_state is None and state_name == "BUSY" and job is not None:
        gcode_state = "PREPARE"
    status_printer = printer.get("status_printer")
    message = status_printer.get("message") if isinstance(status_printer, Mapping) else None
    message = message.strip() or None if isinstance(message, str) else None
    active = gcode_state in ("RUNNING", "PAUSE", "PREPARE")
    percent: int | None = None
    remaining: int | None = None
    if job is not None and active:
        progress = job.get("progress")
        if isinstance(progress, int | float) and not isinstance(progress, bool) and math.isfinite(progress):
            percent = max(0, min(99, int(progress)))
        left = job.get("time_remaining")
        if isinstance(left, int | float) and not isinstance(left, bool) and left >= 0:
            remaining = math.ceil(left / 60)
    elif gcode_state == "FINISH":
        percent = 100
    reason: str | None = None
    if state_name not in PRINTER_STATES:
        reason = f"unknown printer state {raw_state!r}"
    elif state_name == "ERROR":
        reason = message or "printer error"
    elif state_name == "ATTENTION":
        reason = f"needs attention: {message}" if message else "needs attention"
    return PrinterStatus(
        online=True,
        state=state,
        gcode_state=gcode_state,
        progress_percent=percent,
        remaining_minutes=remaining,
        subtask_name=job_name(job_file) if job is not None else None,
        gcode_file=job_file if job is not None else None,
        error_reason=reason,
    )


def job_id(body: Mapping[str, Any]) -> int | None:
    job = body.get("job")
    if not isinstance(job, Mapping):
        return None
    value = job.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
