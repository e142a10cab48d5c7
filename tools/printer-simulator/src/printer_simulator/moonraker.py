"""A simulated Klipper printer behind Moonraker, from Moonraker's public API documentation: JSON-RPC 2.0
over `/websocket` (`server.connection.identify`, `server.info`, `printer.objects.subscribe` with
`notify_status_update` deltas, `printer.print.*`, `server.spoolman.*`, the `notify_klippy_*` events and
`notify_proc_stat_update` every second) and `POST /server/files/upload`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from typing import Any

from aiohttp import BodyPartReader, web

from printer_simulator.gcode_machine import ACTIVE, COMPLETE, PRINTING, Busy
from printer_simulator.http_printer import HttpSimulatedPrinter
from printer_simulator.project import JobRefused

log = logging.getLogger(__name__)

UNAUTHORIZED = {"code": 401, "message": "Unauthorized"}
RESTART_SECONDS = 0.3
SPOOL_ID = 1


class _Client:
    def __init__(self, ws: web.WebSocketResponse, authenticated: bool) -> None:
        self.ws = ws
        self.authenticated = authenticated
        self.subscription: dict[str, list[str] | None] = {}
        self.sent: dict[str, dict[str, Any]] = {}


class MoonrakerPrinter(HttpSimulatedPrinter):
    protocol = "moonraker"
    pause_message = "Filament runout: PAUSE"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.klippy_state = "ready"
        self._clients: set[_Client] = set()
        self._ticker: asyncio.Task[None] | None = None

    @property
    def reports_materials(self) -> bool:  # type: ignore[override]
        return self.spec.spoolman and bool(self.materials)

    @property
    def gcode_state(self) -> str:
        return self.klippy_state if self.klippy_state != "ready" else self.machine.state

    @property
    def connected_clients(self) -> int:
        return len(self._clients)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/websocket", self._websocket)
        app.router.add_post("/server/files/upload", self._upload)
        app.router.add_get("/server/info", self._http_info)

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
        for client in list(self._clients):
            with contextlib.suppress(Exception):
                await client.ws.close()
        self._clients.clear()
        await super().close_clients()

    # objects -------------------------------------------------------------------------------------
    def objects(self) -> dict[str, dict[str, Any]]:
        machine, job = self.machine, self.machine.job
        active = machine.state in ACTIVE
        material = self.materials[0].type if self.materials else "PLA"
        hot = active or machine.state == PRINTING
        nozzle, bed = (215.0, 60.0) if hot else (25.0, 25.0)
        if material in ("PETG",):
            nozzle, bed = (240.0, 80.0) if hot else (25.0, 25.0)
        fraction = machine.fraction() if job else 0.0
        return {
            "webhooks": {
                "state": self.klippy_state,
                "state_message": self.error_message or ("Printer is ready" if self.klippy_state == "ready" else ""),
            },
            "print_stats": {
                "filename": job.file if job else "",
                "total_duration": round(machine.print_duration(), 1),
                "print_duration": round(machine.print_duration(), 1),
                "filament_used": round(fraction * 4200, 1),
                "state": machine.state,
                "message": machine.message,
                "info": {"total_layer": job.total_layers if job else None, "current_layer": machine.layer() or None},
            },
            "virtual_sdcard": {
                "file_path": f"/home/pi/printer_data/gcodes/{job.file}" if job else None,
                "progress": round(fraction, 4),
                "is_active": machine.state == PRINTING,
                "file_position": int(fraction * len(self.files.get(job.file, b""))) if job else 0,
                "file_size": len(self.files.get(job.file, b"")) if job else 0,
            },
            "display_status": {"progress": round(fraction, 4), "message": None},
            "heater_bed": {"temperature": bed, "target": bed if hot else 0.0, "power": 0.3 if hot else 0.0},
            "extruder": {"temperature": nozzle, "target": nozzle if hot else 0.0, "power": 0.4 if hot else 0.0},
        }

    def _subscribed(self, client: _Client) -> dict[str, dict[str, Any]]:
        objects = self.objects()
        view: dict[str, dict[str, Any]] = {}
        for name, fields in client.subscription.items():
            current = objects.get(name)
            if current is None:
                continue
            view[name] = dict(current) if fields is None else {k: current[k] for k in fields if k in current}
        return view

    # pushing -------------------------------------------------------------------------------------
    def state_changed(self) -> None:
        self.spawn(self._push_updates())

    async def _push_updates(self) -> None:
        if self.silent or self.klippy_state not in ("ready", "shutdown"):
            return
        for client in list(self._clients):
            view = self._subscribed(client)
            delta: dict[str, dict[str, Any]] = {}
            for name, fields in view.items():
                sent = client.sent.get(name, {})
                changed = {k: v for k, v in fields.items() if sent.get(k) != v}
                if changed:
                    delta[name] = changed
            if not delta:
                continue
            client.sent = {name: dict(fields) for name, fields in view.items()}
            await self._send(
                client, {"jsonrpc": "2.0", "method": "notify_status_update", "params": [delta, time.monotonic()]}
            )

    async def _notify_all(self, method: str, params: list[Any] | None = None) -> None:
        if self.silent:
            return
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        for client in list(self._clients):
            await self._send(client, message)

    async def _send(self, client: _Client, message: dict[str, Any]) -> None:
        try:
            await client.ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            self._clients.discard(client)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval)
            with contextlib.suppress(Exception):
                await self._notify_all(
                    "notify_proc_stat_update",
                    [
                        {
                            "moonraker_stats": {"time": time.time(), "cpu_usage": 2.5, "memory": 40000},
                            "websocket_connections": len(self._clients),
                        }
                    ],
                )
                await self._push_updates()

    # klippy --------------------------------------------------------------------------------------
    def error(self, message: str) -> None:
        """Klipper shuts down (e.g. `MCU 'mcu' shutdown: Timer too close`): a running print dies."""
        self.klippy_state = "shutdown"
        self.error_message = message
        self.machine.fail(message)
        self.spawn(self._notify_all("notify_klippy_shutdown"))

    def recover(self) -> None:
        """`FIRMWARE_RESTART`: Klippy disconnects, starts again and is ready; subscriptions are gone."""
        if self.klippy_state == "ready":
            return
        self.spawn(self._restart())

    async def _restart(self) -> None:
        self.klippy_state = "startup"
        self.error_message = None
        for client in self._clients:
            client.subscription, client.sent = {}, {}
        await self._notify_all("notify_klippy_disconnected")
        await asyncio.sleep(RESTART_SECONDS)
        self.machine.power_loss()
        self.klippy_state = "ready"
        await self._notify_all("notify_klippy_ready")

    def set_materials(self, materials: Any) -> None:
        super().set_materials(materials)
        if self.spec.spoolman:
            self.spawn(self._notify_all("notify_active_spool_set", [{"spool_id": SPOOL_ID if materials else None}]))

    # HTTP ----------------------------------------------------------------------------------------
    async def _http_info(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return web.json_response({"error": UNAUTHORIZED}, status=401)
        return web.json_response({"result": self.server_info()})

    def server_info(self) -> dict[str, Any]:
        return {
            "klippy_connected": self.klippy_state != "disconnected",
            "klippy_state": self.klippy_state,
            "components": ["file_manager", "klippy_apis", "machine", "data_store"]
            + (["spoolman"] if self.spec.spoolman else []),
            "failed_components": [],
            "registered_directories": ["config", "logs", "gcodes"],
            "warnings": [],
            "websocket_count": len(self._clients),
            "moonraker_version": "v0.9.3-printfarm-sim",
            "api_version": [1, 5, 0],
            "api_version_string": "1.5.0",
        }

    async def _upload(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return web.json_response({"error": UNAUTHORIZED}, status=401)
        fields: dict[str, str] = {}
        data: bytes | None = None
        filename = ""
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                filename = part.filename or ""
                data = await part.read()
            elif part.name:
                fields[part.name] = (await part.read()).decode()
        if data is None or not filename:
            return web.json_response(
                {"error": {"code": 400, "message": "No file name specifed in upload form"}}, status=400
            )
        checksum = fields.get("checksum")
        if checksum and hashlib.sha256(data).hexdigest() != checksum.lower():
            return web.json_response({"error": {"code": 422, "message": "File checksum mismatch"}}, status=422)
        path = "/".join(p for p in (fields.get("path", "").strip("/"), filename) if p)
        self.machine.store(path, data)
        started = False
        if fields.get("print", "").lower() == "true":
            with contextlib.suppress(Busy, JobRefused):
                self.machine.start(path)
                started = True
        item = {
            "path": path,
            "root": fields.get("root", "gcodes"),
            "modified": time.time(),
            "size": len(data),
            "permissions": "rw",
        }
        return web.json_response(
            {"item": item, "print_started": started, "print_queued": False, "action": "create_file"}, status=201
        )

    # JSON-RPC ------------------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        client = _Client(ws, authenticated=self.authorized(request))
        self._clients.add(client)
        try:
            async for message in ws:
                if message.type != web.WSMsgType.TEXT:
                    continue
                try:
                    body = json.loads(message.data)
                except ValueError:
                    continue
                if not isinstance(body, dict) or self.silent:
                    continue
                reply = await self._rpc(client, body)
                if reply is not None and not self.silent:
                    await self._send(client, reply)
        finally:
            self._clients.discard(client)
        return ws

    async def _rpc(self, client: _Client, body: dict[str, Any]) -> dict[str, Any] | None:
        request_id = body.get("id")
        method = str(body.get("method", ""))
        raw_params = body.get("params")
        params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        try:
            result = self._call(client, method, params)
        except _RpcError as error:
            return {"jsonrpc": "2.0", "error": {"code": error.code, "message": error.message}, "id": request_id}
        if request_id is None:
            return None
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _call(self, client: _Client, method: str, params: dict[str, Any]) -> Any:
        if method == "server.connection.identify":
            key = params.get("api_key")
            if key is not None:
                if key != self.spec.api_key:
                    raise _RpcError(401, "Unauthorized")
                client.authenticated = True
            if not client.authenticated:
                raise _RpcError(401, "Unauthorized")
            return {"connection_id": id(client)}
        if not client.authenticated:
            raise _RpcError(401, "Unauthorized")
        if method == "server.info":
            return self.server_info()
        if method == "printer.objects.subscribe":
            if self.klippy_state not in ("ready", "shutdown"):
                raise _RpcError(503, "Klippy Disconnected")
            wanted = params.get("objects")
            if not isinstance(wanted, dict):
                raise _RpcError(400, "Invalid argument 'objects'")
            client.subscription = {str(k): (list(v) if isinstance(v, list) else None) for k, v in wanted.items()}
            view = self._subscribed(client)
            client.sent = {name: dict(fields) for name, fields in view.items()}
            return {"eventtime": time.monotonic(), "status": view}
        if method.startswith("printer.print."):
            return self._print_command(method.removeprefix("printer.print."), params)
        if method == "server.spoolman.get_spool_id":
            self._require_spoolman()
            return {"spool_id": SPOOL_ID if self.materials else None}
        if method == "server.spoolman.proxy":
            self._require_spoolman()
            return self._spool(params)
        raise _RpcError(-32601, "Method not found")

    def _print_command(self, command: str, params: dict[str, Any]) -> str:
        if self.klippy_state != "ready":
            raise _RpcError(400, f"Klippy {self.klippy_state}")
        machine = self.machine
        if command == "start":
            filename = str(params.get("filename", ""))
            try:
                machine.start(filename)
            except Busy:
                raise _RpcError(400, "SD busy") from None
            except JobRefused as refused:
                raise _RpcError(400, refused.reason) from None
        elif command == "pause":
            machine.pause("")
        elif command == "resume":
            machine.resume()
        elif command == "cancel":
            if not machine.cancel() and machine.state != COMPLETE:
                log.debug("%s: cancel with nothing printing", self.serial)
        else:
            raise _RpcError(-32601, "Method not found")
        return "ok"

    def _require_spoolman(self) -> None:
        if not self.spec.spoolman:
            raise _RpcError(-32601, "Method not found")

    def _spool(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("request_method") != "GET" or params.get("path") != f"/v1/spool/{SPOOL_ID}" or not self.materials:
            raise _RpcError(404, "Spoolman: not found")
        material = self.materials[0]
        return {
            "id": SPOOL_ID,
            "remaining_weight": 10 * material.remain_percent,
            "filament": {
                "id": 1,
                "name": f"{material.type} {material.rgb}",
                "material": material.type,
                "color_hex": material.rgb[1:],
                "weight": 1000.0,
            },
        }


class _RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
