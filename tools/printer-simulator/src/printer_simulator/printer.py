"""One simulated Bambu printer: its own MQTT broker and FTPS server, and the print lifecycle behind them.

The lifecycle is driven by timers (``loop.call_at``) at the moments something changes, plus one periodic
report timer, so an idle printer costs nothing but its reports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from printer_simulator.camera import CameraServer
from printer_simulator.catalog import EXTERNAL_SLOT, MaterialSpec, PrinterSpec, material_temperatures
from printer_simulator.certs import TestCertificateAuthority
from printer_simulator.ftps import FtpsServer
from printer_simulator.mqtt import BrokerHooks, MqttBroker
from printer_simulator.project import JobRefused, inspect_project
from printer_simulator.report import (
    ams_unit_ids,
    device_fields,
    materials_fields,
    report_delta,
    version_modules,
)
from printer_simulator.rtsps import RtspsCameraServer

log = logging.getLogger(__name__)

IDLE, PREPARE, RUNNING, PAUSE, FINISH, FAILED = "IDLE", "PREPARE", "RUNNING", "PAUSE", "FINISH", "FAILED"
ACTIVE_STATES = frozenset({PREPARE, RUNNING, PAUSE})

PRINT_ERROR_CANCELLED = 0x0300_400C  # 50348044: the task was cancelled
PRINT_ERROR_REFUSED = 0x0500_4003
PRINT_ERROR_FILAMENT_RUNOUT = 0x0700_8011
HMS_FILAMENT_RUNOUT: dict[str, int] = {"attr": 0x0700_2000, "code": 0x0002_0001}
DEVELOPER_MODE_REASON = "mqtt message verify failed"

PREPARE_SIM_SECONDS = 120.0
"""Heating and levelling before the first layer, in printer time (scaled like the print)."""
STOP_TO_IDLE_SECONDS = 1.0
"""A stopped printer shows FAILED + 0300_400C for this long (real seconds) before IDLE."""
_EPSILON = 1e-3
_AMBIENT = 25.0


class FaultError(ValueError):
    """A fault request the simulator cannot apply (unknown switch, bad value)."""


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


@dataclass
class FaultSwitches:
    """Switches that stay until changed; one-shot actions (drop, power cycle) are methods."""

    developer_mode: bool = True
    silent: bool = False
    offline: bool = False
    refuse_next_job: int | None = None  # print_error to fail the next job with in PREPARE
    hms_pause_at: float | None = None  # armed: pause at this mc_percent of the current/next print
    hms_print_error: int = PRINT_ERROR_FILAMENT_RUNOUT
    hms_entries: list[dict[str, int]] = field(default_factory=lambda: [dict(HMS_FILAMENT_RUNOUT)])
    slow_prepare_seconds: float | None = None
    print_seconds: float | None = None  # real seconds per print, overriding file and time scale


def _url_to_path(url: str, file: str) -> str:
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


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class SimulatedPrinter:
    def __init__(
        self,
        spec: PrinterSpec,
        *,
        ca: TestCertificateAuthority,
        time_scale: float = 600.0,
        report_interval: float = 1.0,
        default_host: str = "127.0.0.1",
    ) -> None:
        self.spec = spec
        self.serial = spec.serial
        self.host = spec.host or default_host
        self.time_scale = spec.time_scale or time_scale
        self.report_interval = spec.report_interval or report_interval
        self.mqtt_port = spec.mqtt_port
        self.ftp_port = spec.ftp_port
        self.camera_port = spec.camera_port
        self.report_topic = f"device/{spec.serial}/report"
        self.request_topic = f"device/{spec.serial}/request"
        self.files: dict[str, bytes] = {}
        self.faults = FaultSwitches(print_seconds=spec.print_seconds)
        self.commands: deque[dict[str, Any]] = deque(maxlen=50)
        self.starts: list[dict[str, Any]] = []
        """Every accepted `project_file`, never trimmed: what a test counts to find a print started twice."""
        self.reports_sent = 0
        self._ca = ca
        self._broker: MqttBroker | None = None
        self._ftps: FtpsServer | None = None
        self._camera: CameraServer | RtspsCameraServer | None = None
        self._device = device_fields()
        self._materials = spec.materials
        self._seq = 0
        self._last_published: dict[str, Any] | None = None
        self._report_handle: asyncio.TimerHandle | None = None
        self._transition_handle: asyncio.TimerHandle | None = None
        self._running = False
        self._reset_job_state()

    # lifecycle of the simulated device ------------------------------------------------------------
    async def start(self) -> None:
        """Listens on MQTT and FTPS; ports 0 become free ports (see ``mqtt_port``/``ftp_port``)."""
        ssl_context = self._ca.server_context(self.serial)
        self._broker = MqttBroker(
            report_topic=self.report_topic,
            hooks=BrokerHooks(self._authenticate, self._on_mqtt_publish, self._on_subscribe),
            ssl_context=ssl_context,
        )
        self._ftps = FtpsServer(
            ssl_context=ssl_context, access_code=self.spec.access_code, files=self.files, on_upload=self._on_upload
        )
        if self.spec.has_jpeg_camera:
            self._camera = CameraServer(ssl_context, self.spec.access_code)
        elif self.spec.has_rtsps_camera:
            self._camera = RtspsCameraServer(ssl_context, self.spec.access_code)
        await self._listen()
        self._running = True
        loop = asyncio.get_running_loop()
        self._report_handle = loop.call_later(random.uniform(0, self.report_interval), self._on_report_timer)

    async def stop(self) -> None:
        self._running = False
        for handle in (self._report_handle, self._transition_handle):
            if handle is not None:
                handle.cancel()
        self._report_handle = self._transition_handle = None
        await self._unlisten()

    async def _listen(self) -> None:
        assert self._broker is not None and self._ftps is not None
        self.mqtt_port = await self._broker.start(self.host, self.mqtt_port)
        try:
            self.ftp_port = await self._ftps.start(self.host, self.ftp_port)
            if self._camera is not None:
                self.camera_port = await self._camera.start(self.host, self.camera_port)
        except OSError:
            await self._broker.stop()
            await self._ftps.stop()
            raise
        self.faults.offline = False

    async def _unlisten(self) -> None:
        if self._broker is not None:
            await self._broker.stop()
        if self._ftps is not None:
            await self._ftps.stop()
        if self._camera is not None:
            await self._camera.stop()

    # state ------------------------------------------------------------------------------------------
    def _reset_job_state(self) -> None:
        self.gcode_state = IDLE
        self.job: Job | None = None
        self.print_error = 0
        self.hms: list[dict[str, int]] = []
        self.tray_now = 255
        self._phase_started = 0.0
        self._prepare_duration = 0.0
        self._run_duration = 1.0
        self._run_elapsed = 0.0
        self._run_resumed_at = 0.0
        self._idle_at: float | None = None
        self._hms_at: float | None = None
        self._frozen: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._materials_block = self._build_materials_block()

    def _build_materials_block(self) -> dict[str, Any]:
        return materials_fields(
            self._materials, ams_units=self.spec.ams_units, vt_tray_id=self.spec.vt_tray_id, tray_now=self.tray_now
        )

    @property
    def materials(self) -> tuple[MaterialSpec, ...]:
        return self._materials

    @property
    def online(self) -> bool:
        return self._broker is not None and self._broker.listening

    @property
    def connected_clients(self) -> int:
        return self._broker.client_count if self._broker is not None else 0

    def _time(self) -> float:
        return asyncio.get_running_loop().time()

    def _run_fraction(self, now: float) -> float:
        elapsed = self._run_elapsed
        if self.gcode_state == RUNNING:
            elapsed += now - self._run_resumed_at
        return max(0.0, min(1.0, elapsed / self._run_duration))

    def _progress(self, now: float) -> tuple[int, int, int, int]:
        """``mc_percent``, ``mc_remaining_time`` (minutes), ``layer_num``, prepare percent."""
        job, state = self.job, self.gcode_state
        if job is None or state == IDLE:
            return 0, 0, 0, 0
        total_minutes = math.ceil(job.print_seconds / 60)
        if state == PREPARE:
            elapsed = (now - self._phase_started) / self._prepare_duration if self._prepare_duration else 1.0
            return 0, total_minutes, 0, int(100 * min(1.0, max(0.0, elapsed)))
        if state in (RUNNING, PAUSE):
            fraction = self._run_fraction(now)
            remaining = math.ceil(job.print_seconds * (1 - fraction) / 60)
            layer = max(1, math.ceil(fraction * job.total_layers))
            return min(99, int(fraction * 100)), remaining, layer, 100
        if state == FINISH:
            return 100, 0, job.total_layers, 100
        return self._frozen

    def _next_transition(self) -> float | None:
        if self.gcode_state == PREPARE:
            return self._phase_started + self._prepare_duration
        if self.gcode_state == RUNNING:
            target = 1.0 if self._hms_at is None else min(1.0, self._hms_at / 100)
            return self._run_resumed_at + target * self._run_duration - self._run_elapsed
        if self.gcode_state == FAILED:
            return self._idle_at
        return None

    def _advance(self, now: float) -> bool:
        """Applies every transition due by ``now``; True if the state changed."""
        changed = False
        for _ in range(4):
            due = self._next_transition()
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
            elif self.gcode_state == RUNNING and self._hms_at is not None and self._run_fraction(due) < 1.0:
                self._run_elapsed += due - self._run_resumed_at
                self._hms_at = None
                self.gcode_state = PAUSE
                self.print_error = self.faults.hms_print_error
                self.hms = [dict(entry) for entry in self.faults.hms_entries]
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

    def _start_running(self, at: float) -> None:
        job = self.job
        assert job is not None
        self.gcode_state = RUNNING
        self._run_elapsed = 0.0
        self._run_resumed_at = at
        mapped = [slot for slot in job.ams_mapping if slot >= 0]
        if job.use_ams and mapped:
            tray = mapped[0]
        elif job.use_ams and any(m.slot != EXTERNAL_SLOT for m in self._materials):
            tray = min(m.slot for m in self._materials if m.slot != EXTERNAL_SLOT)
        else:
            tray = EXTERNAL_SLOT
        self._set_tray_now(tray)

    def _fail(self, print_error: int, at: float, *, idle_after: float | None) -> None:
        self._record_outcome("failed")
        self._frozen = self._progress(at)
        self.gcode_state = FAILED
        self.print_error = print_error
        self.hms = []
        self._hms_at = None
        self._idle_at = at + idle_after if idle_after is not None else None

    def _record_outcome(self, outcome: str) -> None:
        if self.starts and self.starts[-1]["outcome"] is None:
            self.starts[-1]["outcome"] = outcome

    def _set_tray_now(self, tray: int) -> None:
        if tray != self.tray_now:
            self.tray_now = tray
            self._materials_block = self._build_materials_block()

    def _tick(self) -> None:
        """Brings the state up to now, reporting at once if it changed."""
        if self._advance(self._time()):
            self._state_changed()

    def _state_changed(self) -> None:
        self._send_report()
        self._schedule_transition()

    def _schedule_transition(self) -> None:
        if self._transition_handle is not None:
            self._transition_handle.cancel()
            self._transition_handle = None
        due = self._next_transition()
        if due is not None and self._running:
            self._transition_handle = asyncio.get_running_loop().call_at(due, self._on_transition_timer)

    def _on_transition_timer(self) -> None:
        self._transition_handle = None
        self._tick()
        if self._transition_handle is None:
            self._schedule_transition()

    def _on_report_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._report_handle = loop.call_later(self.report_interval, self._on_report_timer)
        if self._advance(loop.time()):
            self._schedule_transition()
        self._send_report()

    # reports ----------------------------------------------------------------------------------------
    def full_report(self) -> dict[str, Any]:
        """The ``print`` object of a full ``push_status`` as of now (without consuming a sequence id)."""
        now = self._time()
        job, state = self.job, self.gcode_state
        percent, remaining, layer, prepare = self._progress(now)
        active = state in ACTIVE_STATES
        nozzle_target = bed_target = 0
        nozzle = bed = _AMBIENT
        if active:
            material = next((m for m in self._materials if m.slot == self.tray_now), None)
            _, _, nozzle_target, bed_target = material_temperatures(material.type if material else "PLA")
            warm = prepare / 100 if state == PREPARE else 1.0
            nozzle = round(_AMBIENT + (nozzle_target - _AMBIENT) * warm, 2)
            bed = round(_AMBIENT + (bed_target - _AMBIENT) * warm, 2)
        ids = job.ids if job else {}
        return {
            **self._device,
            "nozzle_temper": nozzle,
            "nozzle_target_temper": nozzle_target,
            "bed_temper": bed,
            "bed_target_temper": bed_target,
            "chamber_temper": _AMBIENT,
            "mc_print_stage": "2" if active else "1",
            "heatbreak_fan_speed": "15" if active else "0",
            "cooling_fan_speed": "15" if state == RUNNING else "0",
            "big_fan1_speed": "0",
            "big_fan2_speed": "0",
            "mc_percent": percent,
            "mc_remaining_time": remaining,
            "ams_status": 768 if active and self.tray_now < EXTERNAL_SLOT else 0,
            "ams_rfid_status": 6,
            "hw_switch_state": 1,
            "spd_mag": 100,
            "spd_lvl": 2,
            "print_error": self.print_error,
            "lifecycle": "product",
            "wifi_signal": "-45dBm",
            "gcode_state": state,
            "gcode_file_prepare_percent": str(prepare),
            "queue_number": 0,
            "queue_total": 0,
            "queue_est": 0,
            "queue_sts": 0,
            "project_id": ids.get("project_id", "0"),
            "profile_id": ids.get("profile_id", "0"),
            "task_id": ids.get("task_id", "0"),
            "subtask_id": ids.get("subtask_id", "0"),
            "subtask_name": job.subtask_name if job else "",
            "gcode_file": job.file if job else "",
            "stg": [],
            "stg_cur": 0 if active else 255,
            "print_type": "local" if active else "idle",
            "home_flag": 0,
            "mc_print_line_number": "0",
            "mc_print_sub_stage": 0,
            "sdcard": True,
            "force_upgrade": False,
            "mess_production_state": "active",
            "layer_num": layer,
            "total_layer_num": job.total_layers if job else 0,
            "s_obj": [],
            "filam_bak": [],
            "fan_gear": 0,
            "nozzle_diameter": "0.4",
            "nozzle_type": "hardened_steel",
            "cali_version": 0,
            "k": "0.0200",
            "flag3": 15,
            "hms": self.hms,
            **self._materials_block,
            "command": "push_status",
            "msg": 0,
            "sequence_id": str(self._seq),
        }

    def _send_report(self, *, full: bool = False) -> None:
        broker = self._broker
        if broker is None or not broker.subscribers or self.faults.silent:
            return
        report = self.full_report()
        self._seq += 1
        report["sequence_id"] = str(self._seq)
        previous = self._last_published
        self._last_published = report
        if full or previous is None or self.spec.full_reports:
            body = report
        else:
            body = {"command": "push_status", **report_delta(previous, report), "msg": 1}
            body["sequence_id"] = report["sequence_id"]
        self.reports_sent += 1
        broker.publish(json.dumps({"print": body}, separators=(",", ":")).encode())

    def _publish(self, message: dict[str, Any]) -> None:
        if self._broker is not None and not self.faults.silent:
            self._broker.publish(json.dumps(message, separators=(",", ":")).encode())

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

    # MQTT hooks -------------------------------------------------------------------------------------
    def _authenticate(self, username: str | None, password: bytes | None) -> bool:
        return username == "bblp" and password is not None and password == self.spec.access_code.encode()

    def _on_subscribe(self) -> None:
        """The first subscriber after none gets a full report next, so deltas start from something seen."""
        if self._broker is not None and len(self._broker.subscribers) == 1:
            self._last_published = None

    def _on_upload(self, path: str) -> None:
        log.debug("%s received %s (%d bytes)", self.serial, path, len(self.files.get(path, b"")))

    def _on_mqtt_publish(self, topic: str, payload: bytes) -> None:
        if topic != self.request_topic:
            log.debug("%s ignores a publish to %s", self.serial, topic)
            return
        try:
            message = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.debug("%s ignores a non-JSON request", self.serial)
            return
        if not isinstance(message, dict):
            return
        for kind, body in message.items():
            if isinstance(body, dict):
                self.handle_command(str(kind), body)

    def handle_command(self, kind: str, body: Mapping[str, Any]) -> None:
        """One ``{"<kind>": body}`` request as the printer would handle it."""
        self._tick()
        command = str(body.get("command", ""))
        sequence_id = body.get("sequence_id", "0")
        self.commands.append(
            {"type": kind, "command": command, "sequence_id": sequence_id, "at": _now_iso(), "result": None}
        )
        if kind == "pushing":
            if command == "pushall":
                self._send_report(full=True)
            self.commands[-1]["result"] = "success"
            return
        if kind == "info" and command == "get_version":
            units = ams_unit_ids(self._materials, self.spec.ams_units)
            self._reply(kind, command, sequence_id, True, module=version_modules(self.spec.profile, self.serial, units))
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

    # commands -----------------------------------------------------------------------------------------
    def _start_job(self, body: Mapping[str, Any], sequence_id: Any) -> None:
        param = str(body.get("param") or "Metadata/plate_1.gcode")
        if self.gcode_state in ACTIVE_STATES:
            self._reply("print", "project_file", sequence_id, False, "printer is busy", param=param)
            return
        url, file = str(body.get("url") or ""), str(body.get("file") or "")
        path = _url_to_path(url, file)
        refused: JobRefused | None = None
        try:
            plate = inspect_project(path, self.files.get(path), param)
            print_seconds, layers = plate.print_seconds, plate.total_layers
        except JobRefused as exc:
            refused, print_seconds, layers = exc, 0.0, 0
        if refused is None and self.faults.refuse_next_job is not None:
            refused = JobRefused(self.faults.refuse_next_job, "refused by the refuse_next_job fault")
        self.faults.refuse_next_job = None
        mapping = _as_mapping(body.get("ams_mapping"))
        self.job = Job(
            file=path,
            url=url,
            param=param,
            subtask_name=str(body.get("subtask_name") or path),
            ams_mapping=mapping,
            use_ams=bool(body.get("use_ams", True)),
            print_seconds=print_seconds,
            total_layers=layers,
            refused=refused,
            ids={k: str(body[k]) for k in ("project_id", "profile_id", "task_id", "subtask_id") if k in body},
        )
        now = self._time()
        self.gcode_state = PREPARE
        self.print_error = 0
        self.hms = []
        self._idle_at = None
        self._phase_started = now
        self._prepare_duration = (
            self.faults.slow_prepare_seconds or self.spec.prepare_seconds or (PREPARE_SIM_SECONDS / self.time_scale)
        )
        self._run_duration = max(0.01, self.faults.print_seconds or print_seconds / self.time_scale)
        self._hms_at = self.faults.hms_pause_at
        self.faults.hms_pause_at = None
        self.starts.append({"subtask_name": self.job.subtask_name, "file": path, "at": _now_iso(), "outcome": None})
        log.info("%s starts %s (%s)", self.serial, path, param)
        self._reply("print", "project_file", sequence_id, True, param=param)
        self._state_changed()

    def _pause(self, sequence_id: Any) -> None:
        if self.gcode_state == RUNNING:
            now = self._time()
            self._run_elapsed += now - self._run_resumed_at
            self.gcode_state = PAUSE
            self._reply("print", "pause", sequence_id, True)
            self._state_changed()
        else:
            self._reply("print", "pause", sequence_id, self.gcode_state == PAUSE)

    def resume(self) -> bool:
        """Continues a paused print (after a user pause or an HMS stop); False if nothing was paused."""
        if self.gcode_state != PAUSE:
            return False
        self.gcode_state = RUNNING
        self._run_resumed_at = self._time()
        self.print_error = 0
        self.hms = []
        self._state_changed()
        return True

    def _resume(self, sequence_id: Any) -> None:
        if self.gcode_state == PAUSE:
            self._reply("print", "resume", sequence_id, True)
            self.resume()
        else:
            self._reply("print", "resume", sequence_id, self.gcode_state == RUNNING)

    def _stop(self, sequence_id: Any) -> None:
        self._reply("print", "stop", sequence_id, True)
        if self.gcode_state in ACTIVE_STATES:
            if self.gcode_state == RUNNING:
                self._run_elapsed += self._time() - self._run_resumed_at
                self.gcode_state = PAUSE  # freeze progress before it is captured
            self._fail(PRINT_ERROR_CANCELLED, self._time(), idle_after=STOP_TO_IDLE_SECONDS)
            log.info("%s stopped", self.serial)
            self._state_changed()

    # faults and settings ------------------------------------------------------------------------------
    def drop_connections(self) -> None:
        """Closes every client's TCP connection; the printer keeps listening."""
        if self._broker is not None:
            self._broker.drop_clients()
        if self._ftps is not None:
            self._ftps.drop_clients()
        if self._camera is not None:
            self._camera.drop_clients()

    def set_silent(self, silent: bool) -> None:
        self.faults.silent = silent

    def set_developer_mode(self, enabled: bool) -> None:
        self.faults.developer_mode = enabled

    def refuse_next_job(self, print_error: int | None = PRINT_ERROR_REFUSED) -> None:
        self.faults.refuse_next_job = print_error

    def hms_pause(
        self,
        *,
        at_percent: float | None = None,
        print_error: int = PRINT_ERROR_FILAMENT_RUNOUT,
        hms: list[dict[str, int]] | None = None,
    ) -> None:
        """Filament run-out: pauses a running print now (or at ``at_percent``), else the next one at 50 %."""
        self.faults.hms_print_error = print_error
        self.faults.hms_entries = [dict(entry) for entry in (hms or [HMS_FILAMENT_RUNOUT])]
        self._tick()
        if self.gcode_state == RUNNING:
            now = self._time()
            current = self._run_fraction(now) * 100
            self._hms_at = current if at_percent is None or at_percent <= current else at_percent
        elif self.gcode_state == PREPARE:
            self._hms_at = 50.0 if at_percent is None else at_percent
        else:
            self.faults.hms_pause_at = 50.0 if at_percent is None else at_percent
            return
        self._tick()
        self._schedule_transition()

    def clear_hms_pause(self) -> None:
        """Disarms a pending run-out and continues a print it paused (the operator loaded filament)."""
        self.faults.hms_pause_at = None
        self._hms_at = None
        if self.gcode_state == PAUSE and self.hms:
            self.resume()
        else:
            self._schedule_transition()

    def set_slow_prepare(self, seconds: float | None) -> None:
        self.faults.slow_prepare_seconds = seconds or None

    def set_print_seconds(self, seconds: float | None) -> None:
        self.faults.print_seconds = seconds or None

    def finish_now(self) -> None:
        """Jumps the current print to FINISH (a refused job still fails, as it would have)."""
        self._tick()
        now = self._time()
        if self.gcode_state == PREPARE:
            self._prepare_duration = now - self._phase_started
            self._tick()
        if self.gcode_state in (RUNNING, PAUSE):
            if self.gcode_state == PAUSE:
                self.gcode_state = RUNNING
                self.hms, self.print_error = [], 0
            self._hms_at = None
            self._run_resumed_at = now - self._run_duration
            self._run_elapsed = 0.0
            self._tick()

    def set_materials(self, materials: tuple[MaterialSpec, ...]) -> None:
        self._materials = materials
        self._materials_block = self._build_materials_block()
        self._send_report()

    async def go_offline(self) -> None:
        """Stops listening entirely, as if the network cable were pulled; printing goes on."""
        self.faults.offline = True
        await self._unlisten()

    async def go_online(self) -> None:
        if not self.online and self._broker is not None:
            self._last_published = None
            await self._listen()

    async def power_cycle(self, down_seconds: float = 0.5) -> None:
        """Off for ``down_seconds``, back in IDLE with the last job forgotten; files on the SD card stay."""
        self._tick()
        if self.gcode_state in ACTIVE_STATES:
            self._record_outcome("power_lost")
        await self.go_offline()
        if self._transition_handle is not None:
            self._transition_handle.cancel()
            self._transition_handle = None
        self._reset_job_state()
        self.faults.hms_pause_at = None
        self.faults.refuse_next_job = None
        self._last_published = None
        await asyncio.sleep(max(0.0, down_seconds))
        await self.go_online()

    async def apply_faults(self, changes: Mapping[str, Any]) -> None:
        """Applies a fault request (the control API's body); raises FaultError on anything unknown."""
        unknown = set(changes) - FAULT_KEYS
        if unknown:
            raise FaultError(f"unknown fault switches: {sorted(unknown)}; known: {sorted(FAULT_KEYS)}")
        try:
            await self._apply_faults(changes)
        except (TypeError, ValueError) as exc:
            raise FaultError(str(exc)) from exc

    async def _apply_faults(self, changes: Mapping[str, Any]) -> None:
        if "developer_mode" in changes:
            self.set_developer_mode(_as_bool(changes["developer_mode"]))
        if "silent" in changes:
            self.set_silent(_as_bool(changes["silent"]))
        if "slow_prepare_seconds" in changes:
            self.set_slow_prepare(_as_seconds(changes["slow_prepare_seconds"]))
        if "print_seconds" in changes:
            self.set_print_seconds(_as_seconds(changes["print_seconds"]))
        if "refuse_next_job" in changes:
            value = changes["refuse_next_job"]
            if isinstance(value, bool) or value is None:
                self.refuse_next_job(PRINT_ERROR_REFUSED if value else None)
            else:
                self.refuse_next_job(int(value))
        if "hms_pause" in changes:
            value = changes["hms_pause"]
            if isinstance(value, Mapping):
                self.hms_pause(
                    at_percent=float(value["at_percent"]) if value.get("at_percent") is not None else None,
                    print_error=int(value.get("print_error", PRINT_ERROR_FILAMENT_RUNOUT)),
                    hms=[{"attr": int(e["attr"]), "code": int(e["code"])} for e in value["hms"]]
                    if value.get("hms")
                    else None,
                )
            elif _as_bool(value):
                self.hms_pause()
            else:
                self.clear_hms_pause()
        if changes.get("resume"):
            self.resume()
        if changes.get("finish_now"):
            self.finish_now()
        if changes.get("drop_connections"):
            self.drop_connections()
        if "offline" in changes:
            if _as_bool(changes["offline"]):
                await self.go_offline()
            else:
                await self.go_online()
        if changes.get("power_cycle"):
            value = changes["power_cycle"]
            down = float(value.get("down_seconds", 0.5)) if isinstance(value, Mapping) else 0.5
            await self.power_cycle(down)

    # views --------------------------------------------------------------------------------------------
    def connection_info(self) -> dict[str, Any]:
        """This printer's entry in the fleet info file (includes the access code: test data)."""
        return {
            **self.spec.passthrough,
            "name": self.spec.name,
            "serial": self.serial,
            "model": self.spec.model,
            "host": self.host,
            "port": self.mqtt_port,
            "ftp_port": self.ftp_port,
            "camera_port": self.camera_port if self._camera is not None else None,
            "access_code": self.spec.access_code,
            "tags": list(self.spec.tags),
            "fabmatic": self.spec.fabmatic,
            "materials": [m.to_json() for m in self._materials],
        }

    def snapshot(self) -> dict[str, Any]:
        """State for the control API; never the access code."""
        self._tick()
        report = self.full_report()
        faults = asdict(self.faults)
        return {
            "name": self.spec.name,
            "serial": self.serial,
            "model": self.spec.model,
            "host": self.host,
            "port": self.mqtt_port,
            "ftp_port": self.ftp_port,
            "report_mode": "full" if self.spec.full_reports else "delta",
            "online": self.online,
            "connected_clients": self.connected_clients,
            "reports_sent": self.reports_sent,
            "tags": list(self.spec.tags),
            "fabmatic": self.spec.fabmatic,
            **{
                key: report[key]
                for key in (
                    "gcode_state",
                    "mc_percent",
                    "mc_remaining_time",
                    "layer_num",
                    "total_layer_num",
                    "gcode_file_prepare_percent",
                    "print_error",
                    "hms",
                    "subtask_name",
                    "gcode_file",
                )
            },
            "tray_now": self.tray_now,
            "job": self.job.to_json() if self.job else None,
            "files": [
                {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in sorted(self.files.items())
            ],
            "camera": None
            if self._camera is None
            else {
                "port": self.camera_port,
                "clients": self._camera.client_count,
                "frames_sent": self._camera.frames_sent,
                "logins_refused": self._camera.logins_refused,
            },
            "last_command": dict(self.commands[-1]) if self.commands else None,
            "commands": [dict(c) for c in self.commands],
            "starts": [dict(s) for s in self.starts],
            "faults": faults,
            "materials": [m.to_json() for m in self._materials],
        }


FAULT_KEYS = frozenset(
    {
        "developer_mode",
        "silent",
        "slow_prepare_seconds",
        "print_seconds",
        "refuse_next_job",
        "hms_pause",
        "resume",
        "finish_now",
        "drop_connections",
        "offline",
        "power_cycle",
    }
)


def _as_mapping(raw: Any) -> list[int]:
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


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {value!r}")


def _as_seconds(value: Any) -> float | None:
    if value is None or value is False:
        return None
    seconds = float(value)
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    return seconds
