"""The requests a Bambu printer takes on ``device/<serial>/request`` (``pushall``, ``get_version``,
``project_file``, pause, resume, stop) and its replies: what each does to the print lifecycle, with the
faults that bend them (developer mode off, a refused next job, a slow prepare, a fixed print time)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from printer_simulator.catalog import PrinterSpec
from printer_simulator.faults import FaultSwitches
from printer_simulator.lifecycle import ACTIVE_STATES, PAUSE, PREPARE_SIM_SECONDS, RUNNING, Job, PrintLifecycle
from printer_simulator.project import JobRefused, inspect_project
from printer_simulator.report import ams_unit_ids, version_modules

log = logging.getLogger(__name__)

DEVELOPER_MODE_REASON = "mqtt message verify failed"


class CommandHandler:
    """Handles one printer's requests; what it changes is told through `changed` (report it, time the next
    transition), replies and reports go out through `publish` and `send_report`."""

    def __init__(
        self,
        spec: PrinterSpec,
        *,
        lifecycle: PrintLifecycle,
        faults: FaultSwitches,
        files: dict[str, bytes],
        time_scale: float,
        clock: Callable[[], float],
        changed: Callable[[], None],
        publish: Callable[[dict[str, Any]], None],
        send_report: Callable[[bool], None],
    ) -> None:
        self.spec = spec
        self.lifecycle = lifecycle
        self.faults = faults
        self.files = files
        self.time_scale = time_scale
        self.commands: deque[dict[str, Any]] = deque(maxlen=50)
        """The last requests and how they were answered, for the control API."""
        self._clock = clock
        self._changed = changed
        self._publish = publish
        self._send_report = send_report

    def on_request(self, payload: bytes) -> None:
        """A publish to the request topic: each ``{"<kind>": body}`` of a JSON object is handled."""
        try:
            message = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.debug("%s ignores a non-JSON request", self.spec.serial)
            return
        if not isinstance(message, dict):
            return
        for kind, body in message.items():
            if isinstance(body, dict):
                self.handle(str(kind), body)

    def handle(self, kind: str, body: Mapping[str, Any]) -> None:
        """One ``{"<kind>": body}`` request as the printer would handle it."""
        self._tick()
        command = str(body.get("command", ""))
        sequence_id = body.get("sequence_id", "0")
        self.commands.append(
            {"type": kind, "command": command, "sequence_id": sequence_id, "at": now_iso(), "result": None}
        )
        if kind == "pushing":
            if command == "pushall":
                self._send_report(True)
            self.commands[-1]["result"] = "success"
            return
        if kind == "info" and command == "get_version":
            units = ams_unit_ids(self.lifecycle.materials, self.spec.ams_units)
            self._reply(
                kind, command, sequence_id, True, module=version_modules(self.spec.profile, self.spec.serial, units)
            )
            return
        if not self.faults.developer_mode:
            self._reply(kind, command, sequence_id, False, DEVELOPER_MODE_REASON)
            return
        if kind == "print" and command == "project_file":
            self._start_job(body, sequence_id)
        elif kind == "print" and command == "pause":
            self._pause(sequence_id)
        elif kind == "print" and command == "resume":
            self._resume(sequence_id)
        elif kind == "print" and command == "stop":
            self._stop(sequence_id)
        else:
            self._reply(kind, command, sequence_id, True)

    def resume(self) -> bool:
        """Continues a paused print (after a user pause or an HMS stop); False if nothing was paused."""
        if not self.lifecycle.resume(self._clock()):
            return False
        self._changed()
        return True

    def _tick(self) -> None:
        if self.lifecycle.advance(self._clock()):
            self._changed()

    def _start_job(self, body: Mapping[str, Any], sequence_id: Any) -> None:
        param = str(body.get("param") or "Metadata/plate_1.gcode")
        if self.lifecycle.gcode_state in ACTIVE_STATES:
            self._reply("print", "project_file", sequence_id, False, "printer is busy", param=param)
            return
        url, file = str(body.get("url") or ""), str(body.get("file") or "")
        path = url_to_path(url, file)
        refused: JobRefused | None = None
        try:
            plate = inspect_project(path, self.files.get(path), param)
            print_seconds, layers = plate.print_seconds, plate.total_layers
        except JobRefused as exc:
            refused, print_seconds, layers = exc, 0.0, 0
        if refused is None and self.faults.refuse_next_job is not None:
            refused = JobRefused(self.faults.refuse_next_job, "refused by the refuse_next_job fault")
        self.faults.refuse_next_job = None
        job = Job(
            file=path,
            url=url,
            param=param,
            subtask_name=str(body.get("subtask_name") or path),
            ams_mapping=as_mapping(body.get("ams_mapping")),
            use_ams=bool(body.get("use_ams", True)),
            print_seconds=print_seconds,
            total_layers=layers,
            refused=refused,
            ids={k: str(body[k]) for k in ("project_id", "profile_id", "task_id", "subtask_id") if k in body},
        )
        self.lifecycle.start(
            job,
            self._clock(),
            prepare_seconds=(
                self.faults.slow_prepare_seconds or self.spec.prepare_seconds or (PREPARE_SIM_SECONDS / self.time_scale)
            ),
            run_seconds=max(0.01, self.faults.print_seconds or print_seconds / self.time_scale),
            hms_at=self.faults.take_hms_pause_at(),
        )
        self.lifecycle.record_start(now_iso())
        log.info("%s starts %s (%s)", self.spec.serial, path, param)
        self._reply("print", "project_file", sequence_id, True, param=param)
        self._changed()

    def _pause(self, sequence_id: Any) -> None:
        if self.lifecycle.pause(self._clock()):
            self._reply("print", "pause", sequence_id, True)
            self._changed()
        else:
            self._reply("print", "pause", sequence_id, self.lifecycle.gcode_state == PAUSE)

    def _resume(self, sequence_id: Any) -> None:
        if self.lifecycle.gcode_state == PAUSE:
            self._reply("print", "resume", sequence_id, True)
            self.resume()
        else:
            self._reply("print", "resume", sequence_id, self.lifecycle.gcode_state == RUNNING)

    def _stop(self, sequence_id: Any) -> None:
        self._reply("print", "stop", sequence_id, True)
        if self.lifecycle.cancel(self._clock()):
            log.info("%s stopped", self.spec.serial)
            self._changed()

    def _reply(self, kind: str, command: str, sequence_id: Any, ok: bool, reason: str = "", **extra: Any) -> None:
        record = self.commands[-1] if self.commands else None
        if record is not None and record.get("command") == command:
            record["result"] = "success" if ok else "failed"
            record["reason"] = reason
        self._publish(
            {
                kind: {
                    "command": command,
                    "sequence_id": sequence_id,
                    **extra,
                    "result": "success" if ok else "failed",
                    "reason": reason,
                }
            }
        )


def url_to_path(url: str, file: str) -> str:
    """``ftp:///a.gcode.3mf``, ``ftp://a.gcode.3mf``, ``file:///sdcard/a.gcode.3mf`` → ``a.gcode.3mf``."""
    path = url
    for prefix in ("file:///sdcard/", "file:///mnt/sdcard/", "file://", "ftp://"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    path = path.lstrip("/")
    if path.startswith("sdcard/"):
        path = path[len("sdcard/") :]
    return path or file.lstrip("/")


def as_mapping(raw: Any) -> list[int]:
    """``ams_mapping`` as ints; entries that are not numbers count as unmapped (-1)."""
    if not isinstance(raw, list):
        return []
    mapping = []
    for value in raw:
        try:
            mapping.append(int(value))
        except (TypeError, ValueError):
            mapping.append(-1)
    return mapping


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
