"""The printer simulator as a child process, and the fleet description it writes once its printers listen."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.errors import StackError
from devstack.process import ManagedProcess


@dataclass(frozen=True)
class SimPrinter:
    name: str
    serial: str
    model: str
    host: str
    port: int
    ftp_port: int
    access_code: str = field(repr=False)
    tags: tuple[str, ...] = ()
    fabmatic: bool = False
    materials: tuple[dict[str, Any], ...] = ()
    protocol: str = "bambu_lan"
    camera_port: int | None = None
    api_key: str = field(default="", repr=False)
    reports_materials: bool = True
    """False: the printer does not report its filament (no Spoolman, no AMS); the operator registers it."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SimPrinter:
        return cls(
            name=str(data["name"]),
            serial=str(data["serial"]),
            model=str(data["model"]),
            host=str(data["host"]),
            port=int(data["port"]),
            ftp_port=int(data["ftp_port"]),
            access_code=str(data["access_code"]),
            tags=tuple(data.get("tags") or ()),
            fabmatic=bool(data.get("fabmatic", False)),
            materials=tuple(data.get("materials") or ()),
            protocol=str(data.get("protocol") or "bambu_lan"),
            camera_port=int(data["camera_port"]) if data.get("camera_port") else None,
            api_key=str(data.get("api_key") or ""),
            reports_materials=bool(data.get("reports_materials", True)),
        )

    def registration(self, ca_cert: str) -> dict[str, Any]:
        """Body of ``POST /api/v1/printers`` for this printer."""
        if self.protocol != "bambu_lan":
            body: dict[str, Any] = {
                "name": self.name,
                "model": self.model,
                "protocol": self.protocol,
                "host": self.host,
                "port": self.port,
                "serial": self.serial,
                "tags": list(self.tags),
                "fabmatic": self.fabmatic,
            }
            if self.api_key:
                body["api_key"] = self.api_key
            if not self.reports_materials:
                body["materials"] = [{"type": m["type"], "color": m.get("color")} for m in self.materials]
            return body
        return {
            "name": self.name,
            "model": self.model,
            "protocol": "bambu_lan",
            "host": self.host,
            "port": self.port,
            "ftp_port": self.ftp_port,
            "serial": self.serial,
            "access_code": self.access_code,
            "ca_cert": ca_cert,
            "tags": list(self.tags),
            "fabmatic": self.fabmatic,
            **({"camera_port": self.camera_port} if self.camera_port else {}),
        }


@dataclass(frozen=True)
class SimulatorInfo:
    """What the simulator reported: its control URL, its CA and its printers."""

    control_url: str
    ca_cert: str = field(repr=False)
    printers: tuple[SimPrinter, ...]
    fleet: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SimulatorInfo:
        return cls(
            control_url=str(data["control_url"]),
            ca_cert=str(data["ca_cert"]),
            printers=tuple(SimPrinter.from_json(p) for p in data["printers"]),
            fleet=dict(data),
        )

    def printer(self, name_or_serial: str) -> SimPrinter:
        for printer in self.printers:
            if name_or_serial in (printer.name, printer.serial):
                return printer
        raise KeyError(name_or_serial)


class Simulator:
    def __init__(
        self,
        *,
        python: str,
        fleet: str,
        control_port: int,
        state_dir: Path,
        out_file: Path,
        log_path: Path,
        time_scale: float | None,
        log_level: str,
        env: Mapping[str, str],
    ) -> None:
        self.out_file = out_file
        argv = [python, "-m", "printer_simulator", "--fleet", fleet, "--state-dir", str(state_dir),
                "--control-port", str(control_port), "--out", str(out_file), "--log-level", log_level]
        if time_scale is not None:
            argv += ["--time-scale", f"{time_scale:g}"]
        self.state_dir = state_dir
        self.process = ManagedProcess("simulator", argv, log_path=log_path, env=env)
        self.info: SimulatorInfo | None = None

    async def start(self, timeout: float) -> SimulatorInfo:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.out_file.unlink(missing_ok=True)
        await self.process.start()
        info = await self.process.wait_ready(self._read_fleet, timeout, f"the simulator to write {self.out_file}")
        assert info is not None
        self.info = info
        return info

    async def stop(self, timeout: float) -> None:
        await self.process.stop(timeout)

    async def restart(self, timeout: float) -> SimulatorInfo:
        """Start again after a crash: same state folder, so the printers keep their ports, CA and codes."""
        await self.process.stop(0)
        return await self.start(timeout)

    async def _read_fleet(self) -> SimulatorInfo | None:
        try:
            data = json.loads(self.out_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None  # not written yet, or written half-way
        try:
            return SimulatorInfo.from_json(data)
        except (KeyError, TypeError, ValueError) as e:
            raise StackError(f"the simulator wrote {self.out_file} without {e}") from e
