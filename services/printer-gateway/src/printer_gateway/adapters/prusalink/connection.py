"""One Prusa printer through PrusaLink's v1 REST API with its API key (`X-Api-Key`, which the firmware
takes beside HTTP Digest). PrusaLink pushes nothing: the state is polled every `poll_interval`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import quote

import aiohttp

from printer_gateway.adapters.driver import (
    CommandRejected,
    CommandTimedOut,
    PrinterNotConnected,
    PrintJob,
    UploadError,
)
from printer_gateway.adapters.prusalink.status import job_id, parse_status
from printer_gateway.adapters.reconnecting import WRONG_API_KEY, ReconnectingDriver, Refused, Stale

log = logging.getLogger(__name__)

_USB = "/api/v1/files/usb/"


class PrusaLinkConnection(ReconnectingDriver):
    """Keeps one Prusa printer's normalized status current by polling."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._job_id: int | None = None
        self._job_files: dict[int, str] = {}
        self._poke = asyncio.Event()

    async def print_job(self, job: PrintJob) -> None:
        """`PUT` the file to USB storage, then `POST` it to print: a printer that cannot start now answers
        409 with its reason."""
        if job.file_kind != "gcode":
            raise CommandRejected(f"a Prusa printer prints .gcode, not .{job.file_kind}")
        job.check_start_in_time()
        path = _USB + quote(job.file_name)
        headers = {"Content-Length": str(len(job.data)), "Overwrite": "?1", "Content-Type": "text/x.gcode"}
        try:
            async with asyncio.timeout(job.upload_seconds(self._settings.upload_timeout)):
                await self._request("PUT", path, data=job.data, headers=headers, expect=(200, 201, 204))
        except TimeoutError:
            raise UploadError(f"upload of {job.file_name!r} timed out") from None
        except CommandRejected as error:
            raise UploadError(f"upload of {job.file_name!r} refused: {error.reason}") from None
        job.check_start_in_time()
        await self._command("POST", path)

    async def stop_print(self) -> None:
        await self._command("DELETE", f"/api/v1/job/{self._current_job()}")

    async def pause(self) -> None:
        await self._command("PUT", f"/api/v1/job/{self._current_job()}/pause")

    async def resume(self) -> None:
        await self._command("PUT", f"/api/v1/job/{self._current_job()}/resume")

    def _current_job(self) -> int:
        if self._job_id is None:
            raise CommandRejected("the printer has no job")
        return self._job_id

    async def _command(self, method: str, path: str) -> None:
        try:
            async with asyncio.timeout(self._settings.command_timeout):
                await self._request(method, path, expect=(200, 201, 204))
        except TimeoutError:
            raise CommandTimedOut("printer did not acknowledge the command") from None
        self._poke.set()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...],
    ) -> Any:
        http = self._require_http()
        try:
            async with http.request(method, self._settings.base_url + path, data=data, headers=headers) as reply:
                if reply.status in expect:
                    return await reply.json() if reply.status == 200 and reply.content_type.endswith("json") else None
                text = (await reply.text())[:300].strip()
                if reply.status == 401:
                    raise CommandRejected(WRONG_API_KEY)
                raise CommandRejected(f"printer answered {reply.status}" + (f": {text}" if text else ""))
        except aiohttp.ClientError as error:
            raise PrinterNotConnected(f"printer connection failed: {error}") from None

    async def _get(self, http: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
        async with asyncio.timeout(self._settings.stale_after):
            async with http.get(self._settings.base_url + path) as reply:
                if reply.status == 401:
                    raise Refused(WRONG_API_KEY)
                if reply.status != 200:
                    return reply.status, None
                return 200, await reply.json(content_type=None)

    async def _session(self, http: aiohttp.ClientSession) -> None:
        try:
            status, _ = await self._get(http, "/api/v1/info")
            if status != 200:
                raise ConnectionResetError(f"/api/v1/info answered {status}")
            while True:
                await self._poll(http)
                self._poke.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), self._settings.poll_interval)
        except TimeoutError:
            raise Stale from None

    async def _poll(self, http: aiohttp.ClientSession) -> None:
        code, body = await self._get(http, "/api/v1/status")
        if code != 200 or not isinstance(body, dict):
            raise ConnectionResetError(f"/api/v1/status answered {code}")
        current = job_id(body)
        self._job_id = current
        if current is not None and current not in self._job_files:
            code, job = await self._get(http, "/api/v1/job")
            file = job.get("file") if isinstance(job, dict) else None
            name = file.get("display_name") or file.get("name") if isinstance(file, dict) else None
            if isinstance(name, str):
                self._job_files = {current: name}
        await self._emit(parse_status(body, self._job_files.get(current) if current is not None else None))
