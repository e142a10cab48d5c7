"""One Klipper printer through Moonraker: JSON-RPC over its WebSocket for state and commands, HTTP for
the upload. See PRINTERS.md (Moonraker) for the protocol facts this follows."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
from typing import Any

import aiohttp

from printer_gateway.adapters.driver import (
    CommandRejected,
    CommandTimedOut,
    PrinterNotConnected,
    PrintJob,
    UploadError,
)
from printer_gateway.adapters.moonraker.status import (
    SUBSCRIBED_OBJECTS,
    merge_objects,
    parse_status,
    spool_material,
)
from printer_gateway.adapters.reconnecting import WRONG_API_KEY, ReconnectingDriver, Refused, Stale
from printer_gateway.domain.printer_status import LoadedMaterial

log = logging.getLogger(__name__)

UNAUTHORIZED = 401
_KLIPPY_EVENTS = frozenset({"notify_klippy_ready", "notify_klippy_shutdown", "notify_klippy_disconnected"})


class RpcError(Exception):
    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MoonrakerConnection(ReconnectingDriver):
    """Keeps one Klipper printer connected and its normalized status current."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._objects: dict[str, Any] = {}
        self._materials: tuple[LoadedMaterial, ...] = ()
        self._spoolman = False
        self._resync = asyncio.Event()

    async def print_job(self, job: PrintJob) -> None:
        """Upload `<job id>.gcode` to the `gcodes` root, then `printer.print.start` it: a refusal (SD
        busy, Klipper not ready) comes back as a JSON-RPC error with Klipper's words."""
        if job.file_kind != "gcode":
            raise CommandRejected(f"a Klipper printer prints .gcode, not .{job.file_kind}")
        job.check_start_in_time()
        http = self._require_http()
        form = aiohttp.FormData()
        form.add_field("root", "gcodes")
        form.add_field("checksum", hashlib.sha256(job.data).hexdigest())
        form.add_field("file", job.data, filename=job.file_name, content_type="application/octet-stream")
        try:
            async with asyncio.timeout(job.upload_seconds(self._settings.upload_timeout)):
                async with http.post(f"{self._settings.base_url}/server/files/upload", data=form) as reply:
                    if reply.status not in (200, 201):
                        raise UploadError(f"upload of {job.file_name!r} answered {reply.status}: {await _text(reply)}")
        except TimeoutError:
            raise UploadError(f"upload of {job.file_name!r} timed out") from None
        except aiohttp.ClientError as error:
            raise UploadError(f"upload of {job.file_name!r} failed: {error}") from None
        job.check_start_in_time()
        await self._command("printer.print.start", {"filename": job.file_name})

    async def stop_print(self) -> None:
        await self._command("printer.print.cancel")

    async def pause(self) -> None:
        await self._command("printer.print.pause")

    async def resume(self) -> None:
        await self._command("printer.print.resume")

    async def _command(self, method: str, params: dict[str, Any] | None = None) -> None:
        try:
            await self._call(method, params, timeout=self._settings.command_timeout)
        except RpcError as error:
            raise CommandRejected(error.message) from None
        except TimeoutError:
            raise CommandTimedOut("printer did not acknowledge the command") from None

    async def _call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float) -> Any:
        ws = self._ws
        if ws is None or ws.closed:
            raise PrinterNotConnected("printer is not connected")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        try:
            await ws.send_str(json.dumps(message))
            async with asyncio.timeout(timeout):
                return await future
        except (aiohttp.ClientError, ConnectionResetError) as error:
            raise PrinterNotConnected(f"printer connection failed: {error}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _session(self, http: aiohttp.ClientSession) -> None:
        settings = self._settings
        url = f"ws://{settings.base_url.removeprefix('http://')}/websocket"
        async with asyncio.timeout(settings.connect_timeout):
            ws = await http.ws_connect(url, heartbeat=None, autoping=True)
        self._ws = ws
        reader = asyncio.create_task(self._read(ws), name=f"{self.name}-reader")
        try:
            await self._converse(ws, reader)
        finally:
            self._ws = None
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            with contextlib.suppress(Exception):
                await ws.close()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(PrinterNotConnected("printer connection lost"))
            self._pending.clear()

    async def _converse(self, ws: aiohttp.ClientWebSocketResponse, reader: asyncio.Task[None]) -> None:
        """Identify, wait for Klippy, subscribe; again after every Klippy restart (it drops subscriptions)."""
        timeout = self._settings.command_timeout
        try:
            await self._call(
                "server.connection.identify",
                {
                    "client_name": "printfarm",
                    "version": "1",
                    "type": "agent",
                    "url": "https://printfarm.dev",
                    **({"api_key": self._settings.api_key} if self._settings.api_key else {}),
                },
                timeout=timeout,
            )
        except RpcError as error:
            if error.code == UNAUTHORIZED:
                raise Refused(WRONG_API_KEY) from None
            raise
        while True:
            self._resync.clear()
            info = await self._call("server.info", timeout=timeout)
            klippy = str(info.get("klippy_state", "")) if isinstance(info, dict) else ""
            components = info.get("components", []) if isinstance(info, dict) else []
            self._spoolman = isinstance(components, list) and "spoolman" in components
            if klippy == "ready":
                reply = await self._call("printer.objects.subscribe", {"objects": SUBSCRIBED_OBJECTS}, timeout=timeout)
                status = reply.get("status", {}) if isinstance(reply, dict) else {}
                self._objects = merge_objects({}, status if isinstance(status, dict) else {})
                await self._refresh_spool()
            else:
                self._objects = {
                    "webhooks": {"state": klippy or "disconnected", "state_message": info.get("state_message")}
                }
            await self._publish()
            waiter = asyncio.create_task(self._resync.wait())
            done, _ = await asyncio.wait(
                {waiter, reader}, timeout=None if klippy == "ready" else 2.0, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
            if reader in done:
                reader.result()
                raise ConnectionResetError("the printer closed the connection")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Answers to our calls and notifications; Moonraker notifies `notify_proc_stat_update` every
        second, so silence for `stale_after` means the connection is dead."""
        while True:
            try:
                async with asyncio.timeout(self._settings.stale_after):
                    message = await ws.receive()
            except TimeoutError:
                raise Stale from None
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return
            if message.type == aiohttp.WSMsgType.ERROR:
                raise ConnectionResetError(str(ws.exception() or "websocket error"))
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                body = json.loads(message.data)
            except ValueError:
                continue
            if isinstance(body, dict):
                await self._dispatch(body)

    async def _dispatch(self, body: dict[str, Any]) -> None:
        request_id = body.get("id")
        if isinstance(request_id, int) and request_id in self._pending:
            future = self._pending[request_id]
            if future.done():
                return
            error = body.get("error")
            if isinstance(error, dict):
                code = error.get("code")
                future.set_exception(RpcError(code if isinstance(code, int) else None, str(error.get("message"))))
            else:
                future.set_result(body.get("result"))
            return
        method = body.get("method")
        params = body.get("params")
        if method == "notify_status_update" and isinstance(params, list) and params and isinstance(params[0], dict):
            self._objects = merge_objects(self._objects, params[0])
            await self._publish()
        elif method in _KLIPPY_EVENTS:
            if method != "notify_klippy_ready":
                self._objects = merge_objects(
                    self._objects, {"webhooks": {"state": method.removeprefix("notify_klippy_")}}
                )
                await self._publish()
            self._resync.set()
        elif method == "notify_active_spool_set" and self._spoolman:
            asyncio.get_running_loop().create_task(self._spool_changed())

    async def _spool_changed(self) -> None:
        with contextlib.suppress(RpcError, TimeoutError, PrinterNotConnected):
            await self._refresh_spool()
            await self._publish()

    async def _refresh_spool(self) -> None:
        """The active Spoolman spool's material and colour, when the printer's Moonraker has Spoolman."""
        if not self._spoolman:
            self._materials = ()
            return
        timeout = self._settings.command_timeout
        try:
            reply = await self._call("server.spoolman.get_spool_id", timeout=timeout)
            spool_id = reply.get("spool_id") if isinstance(reply, dict) else None
            if spool_id is None:
                self._materials = ()
                return
            spool = await self._call(
                "server.spoolman.proxy", {"request_method": "GET", "path": f"/v1/spool/{spool_id}"}, timeout=timeout
            )
        except RpcError as error:
            log.info("%s: Spoolman did not answer (%s); materials from the operator", self.name, error.message)
            self._materials = ()
            return
        self._materials = spool_material(spool) if isinstance(spool, dict) else ()

    async def _publish(self) -> None:
        await self._emit(parse_status(self._objects, self._materials))


async def _text(reply: aiohttp.ClientResponse) -> str:
    with contextlib.suppress(Exception):
        return (await reply.text())[:300]
    return ""
