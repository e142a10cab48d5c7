"""A set of simulated printers sharing one test CA and one state directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from printer_simulator.catalog import PrinterSpec
from printer_simulator.certs import TestCertificateAuthority
from printer_simulator.http_printer import HttpSimulatedPrinter
from printer_simulator.moonraker import MoonrakerPrinter
from printer_simulator.octoprint import OctoPrintPrinter
from printer_simulator.printer import SimulatedPrinter
from printer_simulator.prusalink import PrusaLinkPrinter

Device = SimulatedPrinter | HttpSimulatedPrinter
"""A simulated printer of any protocol: Bambu LAN (MQTT + FTPS) or one of the HTTP ones."""
HTTP_PRINTERS: dict[str, type[HttpSimulatedPrinter]] = {
    "moonraker": MoonrakerPrinter,
    "prusalink": PrusaLinkPrinter,
    "octoprint": OctoPrintPrinter,
}

log = logging.getLogger(__name__)

_START_BATCH = 64


def raise_open_file_limit() -> None:
    """A thousand printers need a few thousand sockets; lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def write_json_atomically(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, path)


class Fleet:
    """Starts, finds and stops printers; remembers the ports picked for port-0 printers across restarts."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        time_scale: float = 600.0,
        report_interval: float = 1.0,
    ) -> None:
        if time_scale <= 0 or report_interval <= 0:
            raise ValueError("time_scale and report_interval must be positive")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.time_scale = time_scale
        self.report_interval = report_interval
        self.ca = TestCertificateAuthority(self.state_dir)
        self.printers: dict[str, Device] = {}
        self._ports_path = self.state_dir / "ports.json"
        self._remembered_ports = self._load_ports()
        self._lock = asyncio.Lock()

    @property
    def ca_pem(self) -> str:
        return self.ca.pem

    def _load_ports(self) -> dict[str, dict[str, int]]:
        try:
            raw = json.loads(self._ports_path.read_text())
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def _save_ports(self) -> None:
        self._remembered_ports.update(
            {
                serial: {"mqtt": p.mqtt_port, "ftp": p.ftp_port, "camera": getattr(p, "camera_port", 0)}
                for serial, p in self.printers.items()
            }
        )
        write_json_atomically(self._ports_path, self._remembered_ports)

    def get(self, serial: str) -> Device:
        return self.printers[serial]

    async def _start_one(self, spec: PrinterSpec) -> Device:
        remembered = self._remembered_ports.get(spec.serial, {})
        wanted = spec.with_ports(
            spec.mqtt_port or int(remembered.get("mqtt", 0)),
            spec.ftp_port or int(remembered.get("ftp", 0)),
            spec.camera_port or int(remembered.get("camera", 0) or 0),
        )
        printer = self._make(wanted)
        try:
            await printer.start()
        except OSError:
            if wanted == spec:
                raise
            log.info("remembered ports of %s are taken; using free ones", spec.serial)
            printer = self._make(spec)
            await printer.start()
        return printer

    def _make(self, spec: PrinterSpec) -> Device:
        if spec.protocol in HTTP_PRINTERS:
            return HTTP_PRINTERS[spec.protocol](
                spec, time_scale=self.time_scale, report_interval=self.report_interval, default_host=self.host
            )
        return SimulatedPrinter(
            spec,
            ca=self.ca,
            time_scale=self.time_scale,
            report_interval=self.report_interval,
            default_host=self.host,
        )

    async def start(self, specs: Iterable[PrinterSpec]) -> None:
        """Starts printers in parallel batches; every one listens when this returns."""
        raise_open_file_limit()
        pending = list(specs)
        serials = [s.serial for s in pending]
        if len(set(serials)) != len(serials) or self.printers.keys() & set(serials):
            raise ValueError("duplicate printer serial")
        async with self._lock:
            try:
                for i in range(0, len(pending), _START_BATCH):
                    results = await asyncio.gather(
                        *(self._start_one(s) for s in pending[i : i + _START_BATCH]), return_exceptions=True
                    )
                    self.printers.update(
                        (r.serial, r) for r in results if isinstance(r, SimulatedPrinter | HttpSimulatedPrinter)
                    )
                    failure = next((r for r in results if isinstance(r, BaseException)), None)
                    if failure is not None:
                        raise failure
            except BaseException:
                await self._stop_all()
                raise
            self._save_ports()

    async def add_printer(self, spec: PrinterSpec) -> Device:
        async with self._lock:
            if spec.serial in self.printers:
                raise ValueError(f"printer {spec.serial} already exists")
            printer = await self._start_one(spec)
            self.printers[spec.serial] = printer
            self._save_ports()
            return printer

    async def remove_printer(self, serial: str) -> None:
        async with self._lock:
            printer = self.printers.pop(serial)
            await printer.stop()

    async def _stop_all(self) -> None:
        printers = list(self.printers.values())
        self.printers.clear()
        await asyncio.gather(*(p.stop() for p in printers), return_exceptions=True)

    async def stop(self) -> None:
        async with self._lock:
            await self._stop_all()

    def info(self, control_url: str | None = None) -> dict[str, Any]:
        """The fleet info file: what a gateway (or test) needs to connect to every printer."""
        return {
            "ca_cert": self.ca_pem,
            "control_url": control_url,
            "printers": [p.connection_info() for p in self.printers.values()],
        }

    def summaries(self) -> list[Mapping[str, Any]]:
        return [
            {
                "name": p.spec.name,
                "serial": p.serial,
                "model": p.spec.model,
                "host": p.host,
                "port": p.mqtt_port,
                "ftp_port": p.ftp_port,
                "online": p.online,
                "gcode_state": p.gcode_state,
                "connected_clients": p.connected_clients,
            }
            for p in self.printers.values()
        ]

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
