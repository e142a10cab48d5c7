"""The port every printer driver implements. The fleet drives printers through it alone, so supervision,
leases, dispatch and the print lifecycle are the same whether a printer speaks Bambu LAN, Moonraker,
PrusaLink or OctoPrint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from printer_gateway.domain.errors import CameraUnavailable as CameraUnavailable
from printer_gateway.domain.printer_status import PrinterStatus

StatusListener = Callable[[PrinterStatus], Awaitable[None]]


class PrinterCommandError(Exception):
    """A command could not be carried out; `reason` is safe to show to operators."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PrinterNotConnected(PrinterCommandError):
    pass


class CommandRejected(PrinterCommandError):
    pass


class CommandTimedOut(PrinterCommandError):
    """No answer in time: the printer may still have done it, so the dispatch deadline decides."""


class UploadError(PrinterCommandError):
    pass


@dataclass(frozen=True)
class MaterialRequirement:
    """One filament of a sliced job; colour and profile narrow the match only when given. `slots` are the
    spools the queue judged to serve it (a colour within the farm's tolerance): any of them fits."""

    type: str
    color: str | None = None
    profile: str | None = None
    slots: tuple[int, ...] = ()


@dataclass(frozen=True)
class PrintJob:
    """One job to upload and start. `job_id` names the print on the printer, which is how its reports
    are told apart from anything else it prints."""

    job_id: str
    file_kind: str
    data: bytes
    plate: str
    material: MaterialRequirement
    start_by: float | None = None
    """The `monotonic()` time by which the start must be sent, or None. The queue gives a dispatch back at its
    deadline and may send the job to another printer: a start sent after that could print the job twice. So the
    upload gets until then (`upload_seconds`), and a start not sent by then is not sent (`check_start_in_time`)."""

    @property
    def file_name(self) -> str:
        return f"{self.job_id}.{self.file_kind}"

    def upload_seconds(self, limit: float) -> float:
        return upload_seconds(self.start_by, limit)

    def check_start_in_time(self) -> None:
        check_start_in_time(self.start_by, self.file_name)


def upload_seconds(start_by: float | None, limit: float) -> float:
    """How long an upload may take: the driver's `limit`, cut to the time left to send the start."""
    return limit if start_by is None else max(0.0, min(limit, start_by - monotonic()))


def check_start_in_time(start_by: float | None, file_name: str) -> None:
    """Raises `UploadError` once the start may no longer be sent (the upload ended too late)."""
    if start_by is not None and monotonic() >= start_by:
        raise UploadError(f"upload of {file_name!r} ended too late to start the job before its dispatch deadline")


def monotonic() -> float:
    """The clock `PrintJob.start_by` is on (a module function, so tests can move it)."""
    return time.monotonic()


class PrinterDriver(Protocol):
    """One printer kept connected (reconnecting with backoff) and its normalized status reported to the
    listener it was made with; commands raise `PrinterCommandError` with a reason an operator can read."""

    @property
    def status(self) -> PrinterStatus | None: ...

    @property
    def refusing_control(self) -> bool:
        """The printer answers but refuses commands until someone fixes its configuration."""
        ...

    @property
    def attempted(self) -> asyncio.Event:
        """Set once the first connection attempt is over: a session open (before its first status, which may
        take a few round trips more) or a failure reported. A takeover frees the printer's connect slot then."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def print_job(self, job: PrintJob) -> None:
        """Upload and start; returns once the printer accepted the job."""
        ...

    async def stop_print(self) -> None: ...

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def probe_control(self) -> None:
        """A harmless command, to learn whether a printer that refused control accepts it again."""
        ...

    async def mute_reports(self) -> None:
        """Stop the printer's reports for a while, the connection kept: a takeover needs the CPU they take.
        A command unmutes first (its reply comes with the reports); so may a driver that has nothing to mute."""
        ...

    async def unmute_reports(self) -> None:
        """Reports again, starting with a full one (what changed meanwhile is not lost)."""
        ...

    async def camera_snapshot(self) -> bytes:
        """The camera's newest JPEG picture; raises `CameraUnavailable`."""
        ...
