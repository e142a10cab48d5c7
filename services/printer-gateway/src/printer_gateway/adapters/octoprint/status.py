"""OctoPrint's push messages (`current`/`history` and `event`) folded into a `PrinterStatus`. Pure.

OctoPrint goes back to `Operational` after any print, so how the last one ended comes from its events
(`PrintDone`, `PrintCancelled` then `PrintFailed`, `PrintFailed`) and stays until the next
`PrintStarted`; a print that ended while nobody listened counts as done when it reached 100 %."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

from printer_gateway.domain.printer_status import PrinterState, PrinterStatus

RUNNING_TEXTS = frozenset(
    {
        "Printing",
        "Starting",
        "Starting print from SD",
        "Printing from SD",
        "Sending file to SD",
        "Cancelling",
        "Resuming",
        "Finishing",
    }
)
PAUSED_TEXTS = frozenset({"Pausing", "Paused"})
ERROR_TEXTS = frozenset({"Error", "Offline after error"})
_ENDINGS = {"PrintDone": "FINISH", "PrintCancelled": "CANCELLED", "PrintFailed": "FAILED"}


def job_name(file_name: object) -> str | None:
    """We upload `<job id>.gcode`; OctoPrint reports the file's name."""
    if not isinstance(file_name, str) or not file_name.strip():
        return None
    name = PurePosixPath(file_name.strip()).name
    return name[: -len(".gcode")] if name.lower().endswith(".gcode") else name


@dataclass(frozen=True)
class OctoPrintView:
    """The last `current` message and how the last print ended."""

    current: Mapping[str, Any] | None = None
    ended: str | None = None
    ended_reason: str | None = None

    def fold(self, message: Mapping[str, Any]) -> OctoPrintView:
        for key in ("current", "history"):
            body = message.get(key)
            if isinstance(body, Mapping):
                return replace(self, current=body)
        event = message.get("event")
        if not isinstance(event, Mapping):
            return self
        kind = event.get("type")
        payload = _mapping(event.get("payload"))
        if kind == "PrintStarted":
            return replace(self, ended=None, ended_reason=None)
        if kind == "PrintFailed" and self.ended == "CANCELLED":
            return self
        if isinstance(kind, str) and kind in _ENDINGS:
            reason = payload.get("error") or payload.get("reason")
            return replace(self, ended=_ENDINGS[kind], ended_reason=str(reason) if reason else None)
        return self

    def status(self) -> PrinterStatus | None:
        current = self.current
        if current is None:
            return None
        state_body = _mapping(current.get("state"))
        text = state_body.get("text")
        text = text.strip() if isinstance(text, str) else ""
        job, progress = _mapping(current.get("job")), _mapping(current.get("progress"))
        name = job_name(_mapping(job.get("file")).get("name"))
        completion = _number(progress.get("completion"))
        error = state_body.get("error")
        error_text = error.strip() if isinstance(error, str) and error.strip() else None
        gcode_state: str | None
        state: PrinterState
        reason: str | None = None
        if text in RUNNING_TEXTS:
            gcode_state, state = "RUNNING", "printing"
        elif text in PAUSED_TEXTS:
            gcode_state, state = "PAUSE", "paused"
        elif text == "Operational":
            gcode_state = self.ended
            if gcode_state is None and name is not None and completion is not None and completion >= 100:
                gcode_state = "FINISH"
            state = "finished" if gcode_state is not None else "idle"
            gcode_state = gcode_state or "IDLE"
            reason = self.ended_reason if gcode_state in ("FAILED", "CANCELLED") else None
        elif text in ERROR_TEXTS:
            gcode_state = "FAILED" if self.ended == "FAILED" else None
            state, reason = "error", error_text or self.ended_reason or f"OctoPrint: {text}"
        elif text.startswith(("Offline", "Closed", "Detecting", "Connecting", "Opening")) or not text:
            return PrinterStatus(online=False, state="offline", error_reason=f"OctoPrint has no printer ({text})")
        else:
            gcode_state, state, reason = None, "error", f"unknown printer state {text!r}"
        active = gcode_state in ("RUNNING", "PAUSE")
        left = _number(progress.get("printTimeLeft"))
        return PrinterStatus(
            online=True,
            state=state,
            gcode_state=gcode_state,
            progress_percent=(min(99, int(completion)) if active and completion is not None else None)
            if gcode_state != "FINISH"
            else 100,
            remaining_minutes=math.ceil(left / 60) if active and left is not None and left >= 0 else None,
            subtask_name=name,
            gcode_file=name,
            error_reason=reason,
        )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
