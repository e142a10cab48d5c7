"""A simulated Prusa printer (MK4 / XL / Mini firmware) serving PrusaLink's v1 REST API, from its public
OpenAPI description: `/api/version`, `/api/v1/info`, `/api/v1/status`, `/api/v1/job` (204 when none),
`PUT`/`POST /api/v1/files/usb/<name>`, `PUT /api/v1/job/<id>/pause|resume`, `DELETE /api/v1/job/<id>`,
with `X-Api-Key`. The storage keeps an 8.3 `name` beside the long `display_name`."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from aiohttp import web

from printer_simulator.gcode_machine import CANCELLED, COMPLETE, ERROR, PAUSED, PRINTING, Busy
from printer_simulator.http_printer import HttpSimulatedPrinter
from printer_simulator.project import JobRefused, check_printer_type

log = logging.getLogger(__name__)

_NOT_83 = re.compile(r"[^A-Z0-9]")


def short_name(display_name: str, taken: set[str]) -> str:
    """The 8.3 name FAT storage gives a long file name: `JOB-01~1.GCO`."""
    stem, _, ext = display_name.rpartition(".")
    base = _NOT_83.sub("", (stem or display_name).upper())[:6] or "FILE"
    suffix = _NOT_83.sub("", ext.upper())[:3] or "GCO"
    for n in range(1, 10_000):
        candidate = f"{base}~{n}.{suffix}"
        if candidate not in taken:
            return candidate
    raise ValueError("storage full")


class PrusaLinkPrinter(HttpSimulatedPrinter):
    protocol = "prusalink"
    pause_message = "filament runout"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.short_names: dict[str, str] = {}
        self.job_id = 0
        self.attention = False

    @property
    def gcode_state(self) -> str:
        machine = self.machine
        if self.error_message is not None:
            return "ERROR"
        if machine.state == PAUSED:
            return "ATTENTION" if self.attention else "PAUSED"
        return {PRINTING: "PRINTING", COMPLETE: "FINISHED", CANCELLED: "STOPPED", ERROR: "STOPPED"}.get(
            machine.state, "IDLE"
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/v1/info", self._info)
        app.router.add_get("/api/v1/status", self._status)
        app.router.add_get("/api/v1/job", self._job)
        app.router.add_put("/api/v1/files/usb/{name:.+}", self._upload)
        app.router.add_post("/api/v1/files/usb/{name:.+}", self._start)
        app.router.add_put("/api/v1/job/{id}/{action:pause|resume}", self._pause_resume)
        app.router.add_delete("/api/v1/job/{id}", self._stop)

    def _auth(self, request: web.Request) -> None:
        if not self.authorized(request):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Digest realm="Printer API"'})

    async def _version(self, request: web.Request) -> web.Response:
        self._auth(request)
        return web.json_response(
            {"api": "2.0.0", "server": "2.1.2", "text": "PrusaLink", "hostname": self.spec.name, "firmware": "6.1.3"}
        )

    async def _info(self, request: web.Request) -> web.Response:
        self._auth(request)
        return web.json_response(
            {"nozzle_diameter": 0.4, "mmu": False, "serial": self.serial, "hostname": self.spec.name}
        )

    def _job_view(self) -> dict[str, Any] | None:
        machine, job = self.machine, self.machine.job
        if job is None:
            return None
        return {
            "id": self.job_id,
            "progress": round(machine.fraction() * 100, 2),
            "time_remaining": int(machine.remaining_seconds()),
            "time_printing": int(machine.print_duration()),
        }

    async def _status(self, request: web.Request) -> web.Response:
        self._auth(request)
        hot = self.machine.state in (PRINTING, PAUSED)
        printer: dict[str, Any] = {
            "state": self.gcode_state,
            "temp_nozzle": 215.0 if hot else 24.0,
            "target_nozzle": 215.0 if hot else 0.0,
            "temp_bed": 60.0 if hot else 23.0,
            "target_bed": 60.0 if hot else 0.0,
            "axis_z": round(self.machine.layer() * 0.2, 2),
            "flow": 100,
            "speed": 100,
            "fan_hotend": 3000 if hot else 0,
            "fan_print": 5000 if hot else 0,
        }
        message = self.error_message or (self.pause_message if self.attention and self.machine.state == PAUSED else "")
        if message:
            printer["status_printer"] = {"ok": False, "message": message}
        body: dict[str, Any] = {"storage": {"path": "/usb/", "name": "usb", "read_only": False}, "printer": printer}
        job = self._job_view()
        if job is not None:
            body["job"] = job
        return web.json_response(body)

    async def _job(self, request: web.Request) -> web.Response:
        self._auth(request)
        view, job = self._job_view(), self.machine.job
        if view is None or job is None:
            return web.Response(status=204)
        return web.json_response(
            {
                **view,
                "state": self.gcode_state,
                "file": {
                    "name": self.short_names.get(job.file, job.file),
                    "display_name": job.file,
                    "path": "/usb",
                    "size": len(self.files.get(job.file, b"")),
                    "m_timestamp": int(time.time()),
                },
            }
        )

    def _stored(self, name: str) -> str | None:
        """A file by its long or its 8.3 name."""
        if name in self.files:
            return name
        return next((long for long, short in self.short_names.items() if short == name), None)

    async def _upload(self, request: web.Request) -> web.Response:
        self._auth(request)
        name = request.match_info["name"]
        if request.content_length is None:
            raise web.HTTPLengthRequired()
        if name in self.files and request.headers.get("Overwrite") != "?1":
            raise web.HTTPConflict(text="file exists")
        data = await request.read()
        if len(data) != request.content_length:
            raise web.HTTPBadRequest(text="body shorter than Content-Length")
        self.machine.store(name, data)
        self.short_names.setdefault(name, short_name(name, set(self.short_names.values())))
        if request.headers.get("Print-After-Upload") == "?1":
            self._begin(name)
        return web.Response(status=201)

    def _begin(self, name: str) -> None:
        if self.error_message is not None:
            raise web.HTTPConflict(text="printer is in an error state")
        try:
            if self.machine.state not in (PRINTING, PAUSED):
                check_printer_type(name, self.files.get(name), self.spec.model)
            self.machine.start(name)
        except Busy:
            raise web.HTTPConflict(text="printer is busy") from None
        except JobRefused as refused:
            raise web.HTTPConflict(text=refused.reason) from None
        self.job_id += 1
        self.attention = False

    async def _start(self, request: web.Request) -> web.Response:
        self._auth(request)
        stored = self._stored(request.match_info["name"])
        if stored is None:
            raise web.HTTPNotFound(text="no such file")
        self._begin(stored)
        return web.Response(status=204)

    def _current(self, request: web.Request) -> None:
        if self.machine.job is None or request.match_info["id"] != str(self.job_id):
            raise web.HTTPNotFound(text="no such job")

    async def _pause_resume(self, request: web.Request) -> web.Response:
        self._auth(request)
        self._current(request)
        if request.match_info["action"] == "pause":
            done = self.machine.state == PRINTING and self.machine.pause("")
        else:
            done = self.machine.state == PAUSED and self.machine.resume()
            self.attention = False
        if not done:
            raise web.HTTPConflict(text=f"job is {self.gcode_state}")
        return web.Response(status=204)

    async def _stop(self, request: web.Request) -> web.Response:
        self._auth(request)
        self._current(request)
        if not self.machine.cancel():
            raise web.HTTPConflict(text=f"job is {self.gcode_state}")
        return web.Response(status=204)

    def recover(self) -> None:
        """The operator reset the printer: IDLE, the failed job forgotten."""
        self.error_message = None
        self.machine.power_loss()

    async def _apply_faults(self, changes: Any) -> None:
        if changes.get("pause") is True:
            self.attention = True
        if changes.get("resume"):
            self.attention = False
        await super()._apply_faults(changes)
