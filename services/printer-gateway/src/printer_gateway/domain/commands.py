"""What a route, a consumer or the fleet asks the gateway to do: one command per write use case, with its inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.envelope import Envelope
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus


@dataclass(frozen=True)
class RegisterPrinter:
    name: str
    model: str
    protocol: str
    host: str
    port: int
    ftp_port: int
    serial: str | None
    secret: str = field(repr=False)
    """The Bambu access code or the API key; empty for a Moonraker without one."""
    ca_cert: str | None
    tags: list[str]
    fabmatic: bool
    materials: tuple[LoadedMaterial, ...] = ()
    camera_port: int | None = None


@dataclass(frozen=True)
class UpdatePrinter:
    """A PATCH: `changes` by field name; the secret apart, under the name it was sent as (`access_code` or
    `api_key`), so the printer's protocol decides whether that name is right."""

    printer_id: str
    changes: Mapping[str, object]
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DeletePrinter:
    printer_id: str


@dataclass(frozen=True)
class ClearBed:
    printer_id: str


@dataclass(frozen=True)
class ReencryptAccessCodes:
    """Re-encrypt every stored access code not yet under the newest key."""


@dataclass(frozen=True)
class ObserveStatus:
    """A status the printer reported to the replica holding its lease at `epoch`."""

    printer_id: str
    status: PrinterStatus
    epoch: int
    owner: str


@dataclass(frozen=True)
class ObserveStatuses:
    """Reports written together, in one transaction (those that waited for a status writer)."""

    reports: tuple[ObserveStatus, ...]


@dataclass(frozen=True)
class CheckDeadline:
    printer_id: str
    epoch: int


@dataclass(frozen=True)
class DispatchFailed:
    printer_id: str
    job_id: str
    reason: str


@dataclass(frozen=True)
class PrintFile:
    """The file to print, in the object store: `bucket` None is the part uploads' store."""

    sha256: str
    kind: str
    bucket: str | None = None
    plate: str | None = None


@dataclass(frozen=True)
class PrintMaterial:
    type: str
    color: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class StartPrint:
    """Print `job_id` on `printer_id`. `envelope` is the queue's message: carried out once per envelope id,
    whichever replica or path it came by, and the cause of what the gateway answers."""

    envelope: Envelope
    command_id: str
    job_id: str
    printer_id: str
    file: PrintFile
    material: PrintMaterial
    slots: tuple[int, ...]
    deadline: timedelta
    issued_at: datetime | None = None
    """When the queue issued it: its own deadline runs from then (plus a grace), however late the command arrives
    (redelivered while the printer was between owners, a minute at most)."""


@dataclass(frozen=True)
class StopPrint:
    """Stop `job_id` on `printer_id`; once per envelope id, like `StartPrint`."""

    envelope: Envelope
    command_id: str
    job_id: str
    printer_id: str
