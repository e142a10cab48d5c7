"""The connection loop the HTTP and WebSocket drivers share: one session at a time, reconnect with
backoff (1 s → 30 s), a long pause after the printer refused us (wrong key), and the normalized status
reported only when it changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

import aiohttp

from printer_gateway.adapters.driver import CameraUnavailable, PrinterNotConnected, PrintJob, StatusListener
from printer_gateway.domain.printer_status import PrinterStatus

log = logging.getLogger(__name__)

WRONG_API_KEY = "wrong API key"


@dataclass(frozen=True)
class HttpPrinterSettings:
    """Where a printer is and how patient to be with it; the API key never appears in repr."""

    host: str
    port: int
    api_key: str = ""
    stale_after: float = 60.0
    poll_interval: float = 1.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 30.0
    refused_retry_interval: float = 120.0
    connect_timeout: float = 15.0
    command_timeout: float = 30.0
    upload_timeout: float = 600.0

    def __repr__(self) -> str:
        return f"HttpPrinterSettings(host={self.host!r}, port={self.port})"

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class Stale(Exception):
    """Nothing heard from the printer for `stale_after` seconds."""


class Refused(Exception):
    """The printer will not let us in until someone fixes its configuration or ours."""


class ReconnectingDriver(ABC):
    """Runs `_session` again and again; subclasses report statuses through `_emit`."""

    def __init__(
        self,
        settings: HttpPrinterSettings,
        on_status: StatusListener,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._on_status = on_status
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._status: PrinterStatus | None = None
        self._http: aiohttp.ClientSession | None = None
        self._reported = False
        self._attempted = asyncio.Event()

    @property
    def attempted(self) -> asyncio.Event:
        """HTTP printers have no session to open: their first status ends the first attempt."""
        return self._attempted

    @property
    def status(self) -> PrinterStatus | None:
        return self._status

    @property
    def refusing_control(self) -> bool:
        return False

    @property
    def connected(self) -> bool:
        return self._http is not None and self._reported

    @property
    def name(self) -> str:
        return f"{type(self).__name__}({self._settings.host}:{self._settings.port})"

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def probe_control(self) -> None:
        """These printers refuse a wrong key at connect time; the loop retries that by itself."""
        return None

    async def mute_reports(self) -> None:
        """Polled or pushed over one session per printer, cheap next to a Bambu printer's TLS MQTT reports: kept."""
        return None

    async def unmute_reports(self) -> None:
        return None

    async def camera_snapshot(self) -> bytes:
        raise CameraUnavailable("the gateway shows no camera for this kind of printer yet")

    @abstractmethod
    async def print_job(self, job: PrintJob) -> None: ...

    @abstractmethod
    async def _session(self, http: aiohttp.ClientSession) -> None:
        """Talk to the printer until the connection fails (raise) or goes stale (`Stale`)."""

    def _headers(self) -> dict[str, str]:
        return {"X-Api-Key": self._settings.api_key} if self._settings.api_key else {}

    def _require_http(self) -> aiohttp.ClientSession:
        if self._http is None or self._status is None or not self._status.online:
            raise PrinterNotConnected("printer is not connected")
        return self._http

    async def _run(self) -> None:
        settings = self._settings
        delay = settings.reconnect_initial
        while True:
            wait = delay
            self._reported = False
            timeout = aiohttp.ClientTimeout(total=None, connect=settings.connect_timeout)
            try:
                async with aiohttp.ClientSession(timeout=timeout, headers=self._headers()) as http:
                    self._http = http
                    try:
                        await self._session(http)
                    finally:
                        self._http = None
            except Stale:
                await self._emit_unreachable("offline", f"no answer for {settings.stale_after:g} s")
            except Refused as refused:
                wait = settings.refused_retry_interval
                await self._emit_unreachable("error", str(refused))
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
                log.info("%s connection lost: %s", self.name, _describe(error))
                await self._emit_unreachable("offline", f"connection failed: {_describe(error)}")
            except Exception as error:
                log.exception("%s: unexpected failure in the connection loop", self.name)
                await self._emit_unreachable("offline", f"connection failed: {_describe(error)}")
            if self._reported:
                wait = delay = settings.reconnect_initial
            await self._sleep(wait)
            delay = min(delay * 2, settings.reconnect_max)

    async def _emit_unreachable(self, state: Literal["offline", "error"], reason: str) -> None:
        """Keep the last known job and materials for display; `online=False` says they may be outdated."""
        previous = self._status or PrinterStatus.offline()
        await self._emit(replace(previous, online=False, state=state, error_reason=reason))

    async def _emit(self, status: PrinterStatus) -> None:
        self._attempted.set()
        if status.online:
            self._reported = True
        if status == self._status:
            return
        self._status = status
        try:
            await self._on_status(status)
        except Exception:
            log.exception("status listener failed for %s", self.name)


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
