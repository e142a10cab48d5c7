"""Contract messages from the gateway's domain objects, and its commands from the queue's messages: the one place
that knows both shapes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from contracts.envelope import Envelope
from contracts.printers.v1 import LoadedMaterial as LoadedMaterialV1
from contracts.printers.v1 import PrinterChanged, PrintUpdated
from contracts.queue.v1 import StartPrint, StopPrint
from printer_gateway.domain import commands
from printer_gateway.domain.model import Printer, PrintOutcome


def printer_changed(printer: Printer) -> PrinterChanged:
    s = printer.status
    return PrinterChanged(
        id=printer.id,
        name=printer.name,
        model=printer.model,
        protocol=printer.protocol,
        tags=printer.tags,
        fabmatic=printer.fabmatic,
        online=s.online,
        state=s.state,
        error=printer.error,
        bed_clear=printer.bed_clear,
        materials=[
            LoadedMaterialV1(
                slot=m.slot, type=m.type, color=m.color, profile=m.profile, remain_percent=m.remain_percent
            )
            for m in printer.materials
        ],
        current_job_id=printer.current_job_id,
        progress_percent=float(s.progress_percent)
        if printer.current_job_id and s.progress_percent is not None
        else None,
        idle_since=printer.idle_since,
        owner=printer.owner,
        lease_epoch=printer.lease_epoch,
        revision=printer.revision,
        deleted=printer.deleted,
        updated_at=printer.updated_at,
    )


def print_updated(
    printer: Printer, outcome: PrintOutcome, command_id: str | None, sequence: int, occurred_at: datetime
) -> PrintUpdated:
    return PrintUpdated(
        job_id=outcome.job_id,
        printer_id=printer.id,
        command_id=command_id,
        status=outcome.status,
        progress_percent=outcome.progress_percent,
        error=outcome.error,
        sequence=sequence,
        lease_epoch=printer.lease_epoch,
        occurred_at=occurred_at,
    )


def print_refused(
    cmd: commands.StartPrint, reason: str, status: Literal["not_started", "failed"], occurred_at: datetime
) -> PrintUpdated:
    """`not_started`: the queue may send the job elsewhere; `failed`: no printer of this kind can print it."""
    return PrintUpdated(
        job_id=cmd.job_id,
        printer_id=cmd.printer_id,
        command_id=cmd.command_id,
        status=status,
        error=reason,
        sequence=0,
        occurred_at=occurred_at,
    )


def start_print(envelope: Envelope) -> commands.StartPrint:
    message = envelope.open(StartPrint)
    return commands.StartPrint(
        envelope=envelope,
        command_id=message.command_id,
        job_id=message.job_id,
        printer_id=message.printer_id,
        file=commands.PrintFile(
            sha256=message.file.sha256, kind=message.file.kind, bucket=message.file.bucket, plate=message.file.plate
        ),
        material=commands.PrintMaterial(
            type=message.material.type, color=message.material.color, profile=message.material.profile
        ),
        slots=tuple(message.slots),
        deadline=timedelta(seconds=message.deadline_seconds),
        issued_at=message.issued_at,
    )


def stop_print(envelope: Envelope) -> commands.StopPrint:
    message = envelope.open(StopPrint)
    return commands.StopPrint(
        envelope=envelope, command_id=message.command_id, job_id=message.job_id, printer_id=message.printer_id
    )
