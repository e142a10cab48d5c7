"""What the simulated Klipper, PrusaLink and OctoPrint printers share: one HTTP server per printer (its
own address and port), the G-code print lifecycle, the control API's view and the fault switches (drop,
silence, error, pause, offline, power cycle, refuse the next job, print time)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from aiohttp import web

from printer_simulator.catalog import MaterialSpec, PrinterSpec
from printer_simulator.faults import FaultError, as_bool, as_seconds
from printer_simulator.gcode_machine import GcodeMachine

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTTP_FAULT_KEYS = frozenset(
    {
        "drop_connections",
        "silent",
        "offline",
        "error",
        "pause",
        "resume",
        "finish_now",
        "print_seconds",
        "refuse_next_job",
        "power_cycle",
    }
)


class HttpSimulatedPrinter(ABC):
    """Subclasses add their protocol's routes and say what their state is called."""

    protocol = ""

    def __init__(
        self, spec: PrinterSpec, *, time_scale: float = 600.0, report_interval: float = 1.0, default_host: str
    ) -> None:
        self.spec = spec
        self.serial = spec.serial
        self.host = spec.host or default_host
        self.mqtt_port = spec.mqtt_port
        self.ftp_port = 0
        self.time_scale = spec.time_scale or time_scale
        self.report_interval = spec.report_interval or report_interval
        self.machine = GcodeMachine(self.time_scale, self._on_machine_change)
        self.machine.print_seconds_override = spec.print_seconds
        self.files = self.machine.files
        self.materials: tuple[MaterialSpec, ...] = spec.materials
        self.silent = False
        self.error_message: str | None = None
        self.requests: list[dict[str, Any]] = []
        self._unsilenced = asyncio.Event()
        self._unsilenced.set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, step: Coroutine[Any, Any, None]) -> None:
        """Push to clients beside the caller (state changes happen in timer callbacks)."""
        task = asyncio.get_running_loop().create_task(step)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # serving -------------------------------------------------------------------------------------
    @abstractmethod
    def routes(self, app: web.Application) -> None: ...

    @property
    def gcode_state(self) -> str:
        """The printer's own word for its state (for the control API's list)."""
        return self.machine.state

    @property
    def online(self) -> bool:
        return self._site is not None

    @property
    def connected_clients(self) -> int:
        return 0

    async def start(self) -> None:
        app = web.Application(middlewares=[self._silence], client_max_size=1024**3)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, self.mqtt_port, reuse_address=True)
        await site.start()
        self._site = site
        server = getattr(site, "_server", None)
        if self.mqtt_port == 0 and server is not None and server.sockets:
            self.mqtt_port = int(server.sockets[0].getsockname()[1])

    async def _unlisten(self) -> None:
        site, self._site = self._site, None
        await self.close_clients()
        if site is not None:
            await site.stop()

    async def stop(self) -> None:
        self.machine.stop()
        self._unsilenced.set()
        await self._unlisten()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close_clients(self) -> None:
        """Close every open connection (WebSockets and keep-alive HTTP)."""
        server = self._runner.server if self._runner is not None else None
        for handler in list(getattr(server, "connections", []) or []):
            with contextlib.suppress(Exception):
                handler.force_close()

    @web.middleware
    async def _silence(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A silent printer holds every request until it speaks again (the link is up, nothing answers)."""
        await self._unsilenced.wait()
        self.requests.append({"method": request.method, "path": request.path})
        del self.requests[:-50]
        return await handler(request)

    def authorized(self, request: web.Request) -> bool:
        key = self.spec.api_key
        if not key:
            return True
        bearer = request.headers.get("Authorization", "")
        return request.headers.get("X-Api-Key") == key or bearer == f"Bearer {key}"

    def _on_machine_change(self) -> None:
        self.state_changed()

    def state_changed(self) -> None:
        """Subclasses push the change to their clients."""
        return None

    # faults --------------------------------------------------------------------------------------
    async def apply_faults(self, changes: Mapping[str, Any]) -> None:
        unknown = set(changes) - HTTP_FAULT_KEYS
        if unknown:
            raise FaultError(f"unknown fault switches: {sorted(unknown)}; known: {sorted(HTTP_FAULT_KEYS)}")
        try:
            await self._apply_faults(changes)
        except (TypeError, ValueError, KeyError) as exc:
            raise FaultError(str(exc)) from exc

    async def _apply_faults(self, changes: Mapping[str, Any]) -> None:
        machine = self.machine
        if "print_seconds" in changes:
            machine.print_seconds_override = as_seconds(changes["print_seconds"]) or None
        if "refuse_next_job" in changes:
            value = changes["refuse_next_job"]
            machine.refuse_next = None if value in (None, False) else (value if isinstance(value, str) else "refused")
        if "silent" in changes:
            self.silent = as_bool(changes["silent"])
            (self._unsilenced.clear if self.silent else self._unsilenced.set)()
        if "error" in changes:
            value = changes["error"]
            if value in (None, False):
                self.recover()
            else:
                self.error(str(value) if isinstance(value, str) else "simulated printer error")
        if "pause" in changes:
            value = changes["pause"]
            if isinstance(value, Mapping) and value.get("at_percent") is not None:
                machine.pause_at_percent = float(value["at_percent"])
                machine._schedule()
            elif as_bool(value):
                machine.pause(self.pause_message)
        if changes.get("resume"):
            machine.resume()
        if changes.get("finish_now"):
            machine.finish_now()
        if changes.get("drop_connections"):
            await self.close_clients()
        if "offline" in changes:
            if as_bool(changes["offline"]):
                await self._unlisten()
            elif not self.online:
                await self._listen()
        if changes.get("power_cycle"):
            value = changes["power_cycle"]
            down = float(value.get("down_seconds", 0.5)) if isinstance(value, Mapping) else 0.5
            await self._unlisten()
            machine.power_loss()
            self.error_message = None
            await asyncio.sleep(max(0.0, down))
            await self._listen()

    pause_message = "filament runout"

    def error(self, message: str) -> None:
        """The firmware stops with an error; a running print dies with it."""
        self.error_message = message
        self.machine.fail(message)

    def recover(self) -> None:
        """The operator fixed it (firmware restart): ready again, the last print still shown as failed."""
        self.error_message = None
        self.state_changed()

    def set_materials(self, materials: tuple[MaterialSpec, ...]) -> None:
        self.materials = materials
        self.state_changed()

    # views ---------------------------------------------------------------------------------------
    def full_report(self) -> dict[str, Any]:
        return self.snapshot()

    def connection_info(self) -> dict[str, Any]:
        """This printer's entry in the fleet info file (includes the API key: test data)."""
        return {
            **self.spec.passthrough,
            "name": self.spec.name,
            "serial": self.serial,
            "model": self.spec.model,
            "protocol": self.protocol,
            "host": self.host,
            "port": self.mqtt_port,
            "ftp_port": 0,
            "access_code": "",
            "api_key": self.spec.api_key,
            "tags": list(self.spec.tags),
            "fabmatic": self.spec.fabmatic,
            "materials": [m.to_json() for m in self.materials],
            "reports_materials": self.reports_materials,
        }

    reports_materials = False

    def snapshot(self) -> dict[str, Any]:
        """State for the control API; never the API key."""
        machine, job = self.machine, self.machine.job
        return {
            "name": self.spec.name,
            "serial": self.serial,
            "model": self.spec.model,
            "protocol": self.protocol,
            "host": self.host,
            "port": self.mqtt_port,
            "online": self.online,
            "state": machine.state,
            "printer_state": self.gcode_state,
            "message": machine.message,
            "error": self.error_message,
            "progress_percent": round(machine.fraction() * 100, 1),
            "job": None if job is None else {"file": job.file, "print_seconds": job.print_seconds},
            "prints_started": machine.prints_started,
            "files": [
                {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in sorted(self.files.items())
            ],
            "requests": list(self.requests[-20:]),
            "faults": {
                "silent": self.silent,
                "print_seconds": machine.print_seconds_override,
                "refuse_next_job": machine.refuse_next,
                "pause_at_percent": machine.pause_at_percent,
            },
            "materials": [m.to_json() for m in self.materials],
        }
