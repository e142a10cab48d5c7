"""One simulated Bambu printer: the print lifecycle behind its own MQTT broker and FTPS server, the timers
that move it, and the views the control API shows. The parts live apart: `lifecycle` (state machine),
`report` (push_status reports), `commands` (requests and replies), `faults` (fault switches and requests)
and `lan` (MQTT, FTPS and camera servers).

The lifecycle is driven by timers (``loop.call_at``) at the moments something changes, and the periodic
reports by the loop's one `ReportClock`, so an idle printer costs nothing but its reports.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from printer_simulator.catalog import MaterialSpec, PrinterSpec
from printer_simulator.certs import TestCertificateAuthority
from printer_simulator.commands import CommandHandler
from printer_simulator.faults import FaultError, FaultSwitches, apply_fault_request
from printer_simulator.lan import LanServers
from printer_simulator.lifecycle import (
    HMS_FILAMENT_RUNOUT,
    PAUSE,
    PRINT_ERROR_FILAMENT_RUNOUT,
    PRINT_ERROR_REFUSED,
    Job,
    PrintLifecycle,
)
from printer_simulator.report import StatusReports
from printer_simulator.report_clock import Periodic, ReportClock

__all__ = ["FaultError", "SimulatedPrinter"]

log = logging.getLogger(__name__)


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
        self.request_topic = f"device/{spec.serial}/request"
        self.files: dict[str, bytes] = {}
        self.faults = FaultSwitches(print_seconds=spec.print_seconds)
        self._lifecycle = PrintLifecycle(spec.serial, spec.materials, self.faults.run_out)
        self._reports = StatusReports(spec, self._lifecycle)
        self._commands = CommandHandler(
            spec,
            lifecycle=self._lifecycle,
            faults=self.faults,
            files=self.files,
            time_scale=self.time_scale,
            clock=self._time,
            changed=self._state_changed,
            publish=self._publish,
            send_report=lambda full: self._send_report(full=full),
        )
        self._lan = LanServers(
            spec,
            host=self.host,
            ca=ca,
            files=self.files,
            on_request=self._on_mqtt_publish,
            on_subscribe=self._on_subscribe,
            on_upload=self._on_upload,
        )
        self._report_handle: Periodic | None = None
        self._transition_handle: asyncio.TimerHandle | None = None
        self._running = False

    # lifecycle of the simulated device ------------------------------------------------------------
    async def start(self) -> None:
        """Listens on MQTT and FTPS; ports 0 become free ports (see ``mqtt_port``/``ftp_port``)."""
        await self._lan.start()
        self.faults.offline = False
        self._running = True
        self._report_handle = ReportClock.of_running_loop().every(
            self.report_interval, self._on_report_timer, delay=random.uniform(0, self.report_interval)
        )

    async def stop(self) -> None:
        self._running = False
        for handle in (self._report_handle, self._transition_handle):
            if handle is not None:
                handle.cancel()
        self._report_handle = self._transition_handle = None
        await self._lan.unlisten()

    # what the fleet, the control API and tests read ---------------------------------------------------
    @property
    def mqtt_port(self) -> int:
        return self._lan.mqtt_port

    @property
    def ftp_port(self) -> int:
        return self._lan.ftp_port

    @property
    def camera_port(self) -> int:
        return self._lan.camera_port

    @property
    def report_topic(self) -> str:
        return self._lan.report_topic

    @property
    def gcode_state(self) -> str:
        return self._lifecycle.gcode_state

    @property
    def job(self) -> Job | None:
        return self._lifecycle.job

    @property
    def print_error(self) -> int:
        return self._lifecycle.print_error

    @property
    def hms(self) -> list[dict[str, int]]:
        return self._lifecycle.hms

    @property
    def tray_now(self) -> int:
        return self._lifecycle.tray_now

    @property
    def starts(self) -> list[dict[str, Any]]:
        """Every accepted `project_file`, never trimmed: what a test counts to find a print started twice."""
        return self._lifecycle.starts

    @property
    def commands(self) -> deque[dict[str, Any]]:
        return self._commands.commands

    @property
    def reports_sent(self) -> int:
        return self._reports.sent

    @property
    def materials(self) -> tuple[MaterialSpec, ...]:
        return self._lifecycle.materials

    @property
    def online(self) -> bool:
        return self._lan.online

    @property
    def connected_clients(self) -> int:
        return self._lan.connected_clients

    @property
    def subscribers(self) -> int:
        """MQTT clients subscribed to the printer's reports (a client that muted them is connected, not subscribed)."""
        return self._lan.subscribers

    # timers -----------------------------------------------------------------------------------------
    def _time(self) -> float:
        return asyncio.get_running_loop().time()

    def _tick(self) -> None:
        """Brings the state up to now, reporting at once if it changed."""
        if self._lifecycle.advance(self._time()):
            self._state_changed()

    def _state_changed(self) -> None:
        self._send_report()
        self._schedule_transition()

    def _schedule_transition(self) -> None:
        if self._transition_handle is not None:
            self._transition_handle.cancel()
            self._transition_handle = None
        due = self._lifecycle.next_transition()
        if due is not None and self._running:
            self._transition_handle = asyncio.get_running_loop().call_at(due, self._on_transition_timer)

    def _on_transition_timer(self) -> None:
        self._transition_handle = None
        self._tick()
        if self._transition_handle is None:
            self._schedule_transition()

    def _on_report_timer(self) -> None:
        if self._lifecycle.advance(self._time()):
            self._schedule_transition()
        self._send_report()

    # reports and replies ------------------------------------------------------------------------------
    def full_report(self) -> dict[str, Any]:
        """The ``print`` object of a full ``push_status`` as of now (without consuming a sequence id)."""
        return self._reports.current(self._time())

    def _send_report(self, *, full: bool = False) -> None:
        if not self._lan.subscribers or self.faults.silent:
            return
        self._lan.publish(self._reports.next_payload(self._time(), full=full))

    def _publish(self, message: dict[str, Any]) -> None:
        if not self.faults.silent:
            self._lan.publish(json.dumps(message, separators=(",", ":")).encode())

    # MQTT and FTPS hooks ------------------------------------------------------------------------------
    def _on_subscribe(self) -> None:
        """The first subscriber after none gets a full report next, so deltas start from something seen."""
        if self._lan.subscribers == 1:
            self._reports.restart()

    def _on_upload(self, path: str) -> None:
        log.debug("%s received %s (%d bytes)", self.serial, path, len(self.files.get(path, b"")))

    def _on_mqtt_publish(self, topic: str, payload: bytes) -> None:
        if topic != self.request_topic:
            log.debug("%s ignores a publish to %s", self.serial, topic)
            return
        self._commands.on_request(payload)

    def handle_command(self, kind: str, body: Mapping[str, Any]) -> None:
        """One ``{"<kind>": body}`` request as the printer would handle it."""
        self._commands.handle(kind, body)

    def resume(self) -> bool:
        """Continues a paused print (after a user pause or an HMS stop); False if nothing was paused."""
        return self._commands.resume()

    # faults and settings ------------------------------------------------------------------------------
    def drop_connections(self) -> None:
        """Closes every client's TCP connection; the printer keeps listening."""
        self._lan.drop_clients()

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
        if not self._lifecycle.arm_run_out(self._time(), at_percent):
            self.faults.hms_pause_at = 50.0 if at_percent is None else at_percent
            return
        self._tick()
        self._schedule_transition()

    def clear_hms_pause(self) -> None:
        """Disarms a pending run-out and continues a print it paused (the operator loaded filament)."""
        self.faults.hms_pause_at = None
        self._lifecycle.disarm_run_out()
        if self._lifecycle.gcode_state == PAUSE and self._lifecycle.hms:
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
        if self._lifecycle.end_prepare(now):
            self._tick()
        if self._lifecycle.end_run(now):
            self._tick()

    def set_materials(self, materials: tuple[MaterialSpec, ...]) -> None:
        self._lifecycle.materials = materials
        self._send_report()

    async def go_offline(self) -> None:
        """Stops listening entirely, as if the network cable were pulled; printing goes on."""
        self.faults.offline = True
        await self._lan.unlisten()

    async def go_online(self) -> None:
        if not self.online and self._lan.started:
            self._reports.restart()
            await self._lan.listen()
            self.faults.offline = False

    async def power_cycle(self, down_seconds: float = 0.5) -> None:
        """Off for ``down_seconds``, back in IDLE with the last job forgotten; files on the SD card stay."""
        self._tick()
        self._lifecycle.power_lost()
        await self.go_offline()
        if self._transition_handle is not None:
            self._transition_handle.cancel()
            self._transition_handle = None
        self._lifecycle.reset()
        self.faults.hms_pause_at = None
        self.faults.refuse_next_job = None
        self._reports.restart()
        await asyncio.sleep(max(0.0, down_seconds))
        await self.go_online()

    async def apply_faults(self, changes: Mapping[str, Any]) -> None:
        """Applies a fault request (the control API's body); raises FaultError on anything unknown."""
        await apply_fault_request(self, changes)

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
            "camera_port": self.camera_port if self._lan.camera is not None else None,
            "access_code": self.spec.access_code,
            "tags": list(self.spec.tags),
            "fabmatic": self.spec.fabmatic,
            "materials": [m.to_json() for m in self.materials],
        }

    def snapshot(self) -> dict[str, Any]:
        """State for the control API; never the access code."""
        self._tick()
        report = self.full_report()
        faults = asdict(self.faults)
        camera = self._lan.camera
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
            if camera is None
            else {
                "port": self.camera_port,
                "clients": camera.client_count,
                "frames_sent": camera.frames_sent,
                "logins_refused": camera.logins_refused,
            },
            "last_command": dict(self.commands[-1]) if self.commands else None,
            "commands": [dict(c) for c in self.commands],
            "starts": [dict(s) for s in self.starts],
            "faults": faults,
            "materials": [m.to_json() for m in self.materials],
        }
