"""One printer through OctoPrint: REST with its API key for files and job commands, and the push socket
(`/sockjs/websocket` after a passive `/api/login`) for state. A bad key is 403."""

from __future__ import annotations

import asyncio
import contextlib
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
from printer_gateway.adapters.octoprint.status import OctoPrintView
from printer_gateway.adapters.reconnecting import WRONG_API_KEY, ReconnectingDriver, Refused, Stale

log = logging.getLogger(__name__)


class OctoPrintConnection(ReconnectingDriver):
    """Keeps one OctoPrint-driven printer's normalized status current from its push socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._view = OctoPrintView()

    async def print_job(self, job: PrintJob) -> None:
        """Upload with `select` and `print`: OctoPrint answers 201 even when the printer cannot start, and
        says so in `effectivePrint`."""
        if job.file_kind != "gcode":
            raise CommandRejected(f"an OctoPrint printer prints .gcode, not .{job.file_kind}")
        job.check_start_in_time()
        http = self._require_http()
        form = aiohttp.FormData()
        form.add_field("file", job.data, filename=job.file_name, content_type="application/octet-stream")
        form.add_field("select", "true")
        form.add_field("print", "true")
        try:
            async with asyncio.timeout(job.upload_seconds(self._settings.upload_timeout)):
                async with http.post(f"{self._settings.base_url}/api/files/local", data=form) as reply:
                    text = (await reply.text())[:300]
                    if reply.status != 201:
                        raise UploadError(f"upload of {job.file_name!r} answered {reply.status}: {text}")
                    body = json.loads(text) if text.startswith("{") else {}
        except TimeoutError:
            raise UploadError(f"upload of {job.file_name!r} timed out") from None
        except aiohttp.ClientError as error:
            raise UploadError(f"upload of {job.file_name!r} failed: {error}") from None
        if not body.get("effectivePrint", False):
            raise CommandRejected("OctoPrint stored the file but the printer did not start it")

    async def stop_print(self) -> None:
        await self._job_command({"command": "cancel"})

    async def pause(self) -> None:
        await self._job_command({"command": "pause", "action": "pause"})

    async def resume(self) -> None:
        await self._job_command({"command": "pause", "action": "resume"})

    async def _job_command(self, body: dict[str, str]) -> None:
        http = self._require_http()
        try:
            async with asyncio.timeout(self._settings.command_timeout):
                async with http.post(f"{self._settings.base_url}/api/job", json=body) as reply:
                    if reply.status not in (200, 204):
                        text = (await reply.text())[:300].strip()
                        raise CommandRejected(f"OctoPrint answered {reply.status}" + (f": {text}" if text else ""))
        except TimeoutError:
            raise CommandTimedOut("printer did not acknowledge the command") from None
        except aiohttp.ClientError as error:
            raise PrinterNotConnected(f"printer connection failed: {error}") from None

    async def _session(self, http: aiohttp.ClientSession) -> None:
        base, timeout = self._settings.base_url, self._settings.connect_timeout
        async with asyncio.timeout(timeout):
            async with http.get(f"{base}/api/version") as reply:
                if reply.status in (401, 403):
                    raise Refused(WRONG_API_KEY)
                reply.raise_for_status()
            async with http.post(f"{base}/api/login", json={"passive": True}) as reply:
                if reply.status in (401, 403):
                    raise Refused(WRONG_API_KEY)
                reply.raise_for_status()
                login = await reply.json(content_type=None)
            ws = await http.ws_connect(f"ws://{base.removeprefix('http://')}/sockjs/websocket", autoping=True)
        try:
            await ws.send_str(json.dumps({"auth": f"{login.get('name')}:{login.get('session')}"}))
            self._view = OctoPrintView(ended=self._view.ended, ended_reason=self._view.ended_reason)
            await self._read(ws)
        finally:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """OctoPrint sends `current` about twice a second: silence for `stale_after` is a dead link."""
        while True:
            try:
                async with asyncio.timeout(self._settings.stale_after):
                    message = await ws.receive()
            except TimeoutError:
                raise Stale from None
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                raise ConnectionResetError("OctoPrint closed the push socket")
            if message.type == aiohttp.WSMsgType.ERROR:
                raise ConnectionResetError(str(ws.exception() or "websocket error"))
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                body = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(body, dict):
                continue
            self._view = self._view.fold(body)
            status = self._view.status()
            if status is not None:
                await self._emit(status)
