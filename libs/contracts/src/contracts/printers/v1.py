"""printers.v1: printer state and the progress of prints on them, from the printer gateways."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from contracts.envelope import ContractMessage
from contracts.shared_values import Frozen

LEASES_BUCKET = "printer-leases"
"""JetStream key-value bucket: printer id → the gateway replica that holds its connection."""
REPLICAS_BUCKET = "printer-gateway-replicas"
"""JetStream key-value bucket: live gateway replicas (heartbeats that expire)."""
GATEWAY_FORWARD_SUBJECT = "rpc.printers.v1.gateway.{instance}.command"
"""Core NATS request/reply: a replica hands a queue command to the replica owning the printer."""
GATEWAY_ALIVE_SUBJECT = "rpc.printers.v1.gateway.{instance}.alive"
"""Core NATS request/reply, empty both ways: a replica's heartbeat thread answers it while its connection is
open, so once a replica's process dies the NATS server answers "no responders" at once, before its heartbeat
key expires."""

PrinterState = Literal["offline", "idle", "printing", "paused", "finished", "error"]
PrintStatus = Literal["started", "printing", "paused", "completed", "failed", "cancelled", "not_started"]


class LoadedMaterial(Frozen):
    slot: int
    type: str
    color: str | None = None
    profile: str | None = None
    remain_percent: int | None = None


class PrinterChanged(ContractMessage):
    """Full state of one printer; newer `revision` wins. `deleted` marks its removal."""

    SUBJECT: ClassVar[str] = "printers.v1.printer.changed"

    id: str
    name: str
    model: str
    protocol: str | None = None
    """How the gateway talks to it (`bambu_lan`, `moonraker`, `octoprint`, `prusalink`): what the printer
    can print as it is follows from it (a `.gcode.3mf` only on `bambu_lan`)."""
    tags: list[str] = []
    fabmatic: bool = False
    online: bool
    state: PrinterState
    error: str | None = None
    bed_clear: bool
    materials: list[LoadedMaterial] = []
    current_job_id: str | None = None
    progress_percent: float | None = None
    idle_since: datetime | None = None
    owner: str | None = None
    lease_epoch: int = 0
    revision: int
    deleted: bool = False
    updated_at: datetime


class PrintUpdated(ContractMessage):
    """What a printer did with a dispatched job; `sequence` orders updates of one job.

    `not_started`: the dispatch failed before the printer began (upload failed, refused, deadline);
    the queue gives the job back or fails it after bounded retries.
    """

    SUBJECT: ClassVar[str] = "printers.v1.print.updated"

    job_id: str
    printer_id: str
    command_id: str | None = None
    status: PrintStatus
    progress_percent: float | None = None
    error: str | None = None
    sequence: int
    lease_epoch: int = 0
    occurred_at: datetime
