"""A simulated printer behind OctoPrint, from OctoPrint's public REST and push API documentation:
`/api/version`, `/api/login` (passive), `POST /api/files/local` (`select`, `print`), `/api/job`
(`start`, `cancel`, `restart`, `pause` with `action`), `/api/printer` (409 while not operational), and
the push socket at `/sockjs/websocket` (raw WebSocket: `connected`, then after `{"auth": ...}` the
`history`, `current` every report interval and `event` messages)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from typing import Any

from aiohttp import BodyPartReader, web

from printer_simulator.gcode_machine import ACTIVE, CANCELLED, COMPLETE, ERROR, PAUSED, PRINTING, Busy
from printer_simulator.http_printer import HttpSimulatedPrinter
from printer_simulator.project import JobRefused

log = logging.getLogger(__name__)


class OctoPrintPrinter(HttpSimulatedPrinter):
    protocol = "octoprint"
    pause_message = "Printer paused by the firmware (//action:pause)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.selected: str | None = None
        self.sessions: set[str] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._last_state = self.machine.state

    @property
    def gcode_state(self) -> str:
        if self.error_message is not None:
            return "Error"
        return {PRINTING: "Printing", PAUSED: "Paused"}.get(self.machine.state, "Operational")

    @property
    def connected_clients(self) -> int:
        return len(self._sockets)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/version", self._version)
        app.router.add_post("/api/login", self._login)
        app.router.add_post("/api/files/local", self._upload)
        app.router.add_get("/api/job", self._get_job)
        app.router.add_post("/api/job", self._post_job)
        app.router.add_get("/api/printer", self._printer)
        app.router.add_get("/sockjs/websocket", self._socket)

    async def start(self) -> None:
        await super().start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await super().stop()

    async def close_clients(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        self._sockets.clear()
        await super().close_clients()

    def _auth(self, request: web.Request) -> None:
        if not self.authorized(request):
            raise web.HTTPForbidden(text="Invalid API key")

    # views ---------------------------------------------------------------------------------------
    def flags(self) -> dict[str, bool]:
        state = self.gcode_state
        return {
            "operational": state != "Error",
            "printing": state == "Printing",
            "paused": state == "Paused",
            "pausing": False,
            "cancelling": False,
            "error": state == "Error",
            "ready": state == "Operational",
            "closedOrError": state == "Error",
        }

    def job_view(self) -> dict[str, Any]:
        machine, job = self.machine, self.machine.job
        name = job.file if job else self.selected
        active = machine.state in ACTIVE
        return {
            "job": {
                "file": {"name": name, "path": name, "display": name, "origin": "local" if name else None},
                "estimatedPrintTime": job.print_seconds if job else None,
            },
            "progress": {
                "completion": round(machine.fraction() * 100, 2) if job else None,
                "printTime": int(machine.print_duration()) if job else None,
                "printTimeLeft": int(machine.remaining_seconds()) if active else None,
                "filepos": int(machine.fraction() * len(self.files.get(job.file, b""))) if job else None,
            },
            "state": self.gcode_state,
            **({"error": self.error_message} if self.error_message else {}),
        }

    def current(self) -> dict[str, Any]:
        view = self.job_view()
        return {
            "state": {"text": self.gcode_state, "flags": self.flags(), "error": self.error_message or ""},
            "job": view["job"],
            "progress": view["progress"],
            "currentZ": round(self.machine.layer() * 0.2, 2),
            "offsets": {},
            "logs": [],
            "messages": [],
            "serverTime": time.time(),
        }

    # REST ----------------------------------------------------------------------------------------
    async def _version(self, request: web.Request) -> web.Response:
        self._auth(request)
        return web.json_response({"api": "0.1", "server": "1.10.2", "text": "OctoPrint 1.10.2"})

    async def _login(self, request: web.Request) -> web.Response:
        self._auth(request)
        session = secrets.token_hex(16)
        self.sessions.add(session)
        return web.json_response({"name": "_api", "session": session, "active": True, "admin": True})

    async def _printer(self, request: web.Request) -> web.Response:
        self._auth(request)
        if self.error_message is not None:
            raise web.HTTPConflict(text="Printer is not operational")
        hot = self.machine.state in ACTIVE
        return web.json_response(
            {
                "state": {"text": self.gcode_state, "flags": self.flags()},
                "temperature": {
                    "tool0": {"actual": 210.0 if hot else 24.0, "target": 210.0 if hot else 0.0},
                    "bed": {"actual": 60.0 if hot else 23.0, "target": 60.0 if hot else 0.0},
                },
            }
        )

    async def _get_job(self, request: web.Request) -> web.Response:
        self._auth(request)
        return web.json_response(self.job_view())

    async def _upload(self, request: web.Request) -> web.Response:
        self._auth(request)
        fields: dict[str, str] = {}
        data: bytes | None = None
        name = ""
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                name, data = part.filename or "", await part.read()
            elif part.name:
                fields[part.name] = (await part.read()).decode()
        if data is None or not name:
            raise web.HTTPBadRequest(text="No file included")
        self.machine.store(name, data)
        select = fields.get("select", "").lower() == "true" or fields.get("print", "").lower() == "true"
        printed = False
        if select and self.machine.state not in ACTIVE:
            self.selected = name
        if fields.get("print", "").lower() == "true":
            printed = self._start_selected()
        return web.json_response(
            {
                "files": {"local": {"name": name, "path": name, "origin": "local"}},
                "done": True,
                "effectiveSelect": self.selected == name,
                "effectivePrint": printed,
            },
            status=201,
        )

    def _start_selected(self) -> bool:
        if self.error_message is not None or self.selected is None:
            return False
        try:
            self.machine.start(self.selected)
        except (Busy, JobRefused):
            return False
        return True

    async def _post_job(self, request: web.Request) -> web.Response:
        self._auth(request)
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        command = body.get("command") if isinstance(body, dict) else None
        machine = self.machine
        if command in ("start", "restart"):
            if machine.state in ACTIVE or not self._start_selected():
                raise web.HTTPConflict(text="Printer is not operational or already printing")
        elif command == "cancel":
            if not machine.cancel():
                raise web.HTTPConflict(text="Printer is neither printing nor paused")
        elif command == "pause":
            action = body.get("action", "toggle")
            if machine.state not in ACTIVE:
                raise web.HTTPConflict(text="Printer is neither printing nor paused")
            if action == "pause" or (action == "toggle" and machine.state == PRINTING):
                machine.pause("")
            else:
                machine.resume()
        else:
            raise web.HTTPBadRequest(text=f"unknown command {command!r}")
        return web.Response(status=204)

    # push ----------------------------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"connected": {"version": "1.10.2", "apikey": None, "safe_mode": None}}))
        try:
            async for message in ws:
                if message.type != web.WSMsgType.TEXT:
                    continue
                try:
                    body = json.loads(message.data)
                except ValueError:
                    continue
                auth = body.get("auth") if isinstance(body, dict) else None
                if isinstance(auth, str) and auth.partition(":")[2] in self.sessions:
                    self._sockets.add(ws)
                    await self._send(ws, {"history": self.current()})
                elif auth is not None:
                    await ws.close(code=4001, message=b"authentication failed")
        finally:
            self._sockets.discard(ws)
        return ws

    async def _send(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        if self.silent:
            return
        try:
            await ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            self._sockets.discard(ws)

    async def _broadcast(self, message: dict[str, Any]) -> None:
        for ws in list(self._sockets):
            await self._send(ws, message)

    def state_changed(self) -> None:
        previous, state = self._last_state, self.machine.state
        self._last_state = state
        job = self.machine.job
        payload = {"name": job.file if job else None, "path": job.file if job else None, "origin": "local"}
        events: list[str] = []
        if state == PRINTING and previous not in ACTIVE:
            events.append("PrintStarted")
        elif state == PRINTING and previous == PAUSED:
            events.append("PrintResumed")
        elif state == PAUSED and previous == PRINTING:
            events.append("PrintPaused")
        elif state == COMPLETE and previous != COMPLETE:
            events.append("PrintDone")
        elif state == CANCELLED and previous != CANCELLED:
            events += ["PrintCancelled", "PrintFailed"]
        elif state == ERROR and previous != ERROR:
            events.append("PrintFailed")
        messages: list[dict[str, Any]] = []
        for event in events:
            failed = {"reason": "cancelled" if state == CANCELLED else "error"} if "Failed" in event else {}
            messages.append({"event": {"type": event, "payload": {**payload, **failed}}})
        messages.append({"current": self.current()})
        self.spawn(self._broadcast_all(messages))

    async def _broadcast_all(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self._broadcast(message)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval)
            with contextlib.suppress(Exception):
                await self._broadcast({"current": self.current()})

    def error(self, message: str) -> None:
        """The printer's serial link reports an error: OctoPrint fails the job and shows `Error`."""
        self.error_message = message
        self.machine.fail(message)

    def recover(self) -> None:
        """The operator reconnected the printer in OctoPrint: `Operational`, the job forgotten."""
        self.error_message = None
        self.machine.power_loss()
        self._last_state = self.machine.state
        self.state_changed()
