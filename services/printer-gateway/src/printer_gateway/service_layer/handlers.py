"""Use cases of the printer gateway. Each runs in one unit of work; printer I/O happens after commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from contracts.printers.v1 import LoadedMaterial as LoadedMaterialV1
from contracts.printers.v1 import PrinterChanged, PrintUpdated
from contracts.queue.v1 import StartPrint, StopPrint
from printer_gateway.domain.errors import PrinterNotFound, SerialTaken
from printer_gateway.domain.lifecycle import PrintTracker
from printer_gateway.domain.model import Printer, PrinterError, PrintOutcome, UnprintableFile
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus
from printer_gateway.domain.utilisation import utilisation_state
from printer_gateway.service_layer.unit_of_work import UnitOfWork
from servicekit.ids import Clock, IdFactory
from servicekit.secrets import SecretCipher


@dataclass(frozen=True)
class Registration:
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


CONNECTION_FIELDS = frozenset({"host", "port", "ftp_port", "camera_port", "serial", "ca_cert", "secret", "model"})


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


def _announce(printer: Printer, uow: UnitOfWork, clock: Clock) -> None:
    printer.updated(clock())
    uow.emit(printer_changed(printer), subject_id=printer.id)


def _report(
    printer: Printer, outcomes: list[PrintOutcome], uow: UnitOfWork, clock: Clock, command_id: str | None
) -> None:
    for outcome in outcomes:
        uow.emit(
            PrintUpdated(
                job_id=outcome.job_id,
                printer_id=printer.id,
                command_id=command_id,
                status=outcome.status,
                progress_percent=outcome.progress_percent,
                error=outcome.error,
                sequence=printer.next_sequence(),
                lease_epoch=printer.lease_epoch,
                occurred_at=clock(),
            ),
            subject_id=outcome.job_id,
        )


async def register_printer(
    reg: Registration, uow: UnitOfWork, cipher: SecretCipher, clock: Clock, ids: IdFactory
) -> Printer:
    taken = await uow.printers.serial_taken(reg.serial) if reg.serial else None
    if reg.serial and taken:
        raise SerialTaken(reg.serial, taken)
    now = clock()
    printer_id = ids()
    printer = Printer(
        id=printer_id,
        name=reg.name,
        model=reg.model,
        protocol=reg.protocol,
        host=reg.host,
        port=reg.port,
        ftp_port=reg.ftp_port,
        serial=reg.serial,
        tags=reg.tags,
        fabmatic=reg.fabmatic,
        ca_cert=reg.ca_cert,
        created_at=now,
        updated_at=now,
        tracker=PrintTracker(printer_id=printer_id, bed_clear=True),
        status=PrinterStatus.offline("not connected yet"),
        operator_materials=reg.materials,
        camera_port=reg.camera_port,
    )
    printer.updated(now)
    await uow.printers.add(printer, cipher.encrypt(reg.secret))
    await uow.printers.record_state(printer.id, utilisation_state(printer.status), now)
    uow.emit(printer_changed(printer), subject_id=printer.id)
    await uow.commit()
    return printer


async def update_printer(
    printer_id: str, changes: dict[str, object], uow: UnitOfWork, cipher: SecretCipher, clock: Clock
) -> Printer:
    printer = await uow.printers.get(printer_id, for_update=True)
    if printer is None:
        raise PrinterNotFound(printer_id)
    serial = changes.get("serial")
    if isinstance(serial, str) and serial != printer.serial:
        taken = await uow.printers.serial_taken(serial, except_id=printer_id)
        if taken:
            raise SerialTaken(serial, taken)
    secret = changes.pop("secret", None)
    stored = await uow.printers.encrypted_secret(printer_id)
    nothing_to_protect = stored is not None and cipher.decrypt(stored) == ""
    printer.require_access_code_for(changes, access_code_given=bool(secret) or nothing_to_protect)
    if CONNECTION_FIELDS & (set(changes) | ({"secret"} if secret else set())):
        printer.connection_version += 1
    materials = changes.pop("materials", None)
    if isinstance(materials, tuple):
        printer.operator_materials = materials
    for name, value in changes.items():
        setattr(printer, name, value)
    if "fabmatic" in changes:
        printer.note = None
    _announce(printer, uow, clock)
    await uow.printers.save(printer, access_code_encrypted=cipher.encrypt(str(secret)) if secret else None)
    await uow.commit()
    return printer


async def reencrypt_access_codes(uow: UnitOfWork, cipher: SecretCipher) -> int:
    """Re-encrypt every stored access code not yet under the newest key, so an old key can be retired.
    Idempotent and safe with several replicas doing it at once; returns how many codes were rewritten."""
    rewritten = 0
    async with uow:
        for printer_id, token in (await uow.printers.encrypted_access_codes()).items():
            if cipher.is_current(token):
                continue
            if await uow.printers.replace_access_code(printer_id, token, cipher.reencrypt(token)):
                rewritten += 1
        await uow.commit()
    return rewritten


async def delete_printer(printer_id: str, uow: UnitOfWork, clock: Clock) -> None:
    printer = await uow.printers.get(printer_id, for_update=True)
    if printer is None:
        raise PrinterNotFound(printer_id)
    if printer.current_job_id is not None:
        raise PrinterError(f"printer has job {printer.current_job_id}; cancel it first")
    printer.deleted = True
    printer.connection_version += 1
    _announce(printer, uow, clock)
    await uow.printers.save(printer)
    await uow.commit()


async def clear_bed(printer_id: str, uow: UnitOfWork, clock: Clock) -> Printer:
    printer = await uow.printers.get(printer_id, for_update=True)
    if printer is None:
        raise PrinterNotFound(printer_id)
    before = printer.snapshot()
    printer.clear_bed(clock())
    if printer.snapshot() != before:
        _announce(printer, uow, clock)
    await uow.printers.save(printer)
    await uow.commit()
    return printer


async def observe_status(
    printer_id: str, status: PrinterStatus, epoch: int, owner: str, uow: UnitOfWork, clock: Clock
) -> None:
    """Fold one status report into the printer; publish what changed. Fenced by the lease epoch."""
    printer = await uow.printers.get(printer_id, for_update=True)
    if printer is None:
        return
    before = printer.snapshot()
    was = utilisation_state(printer.status)
    command_id = printer.current_command_id
    now = clock()
    outcomes = printer.observe(status, now)
    printer.owner, printer.lease_epoch = owner, epoch
    if printer.snapshot() != before or outcomes:
        _announce(printer, uow, clock)
    if (state := utilisation_state(printer.status)) != was:
        await uow.printers.record_state(printer.id, state, now)
    _report(printer, outcomes, uow, clock, command_id)
    await uow.printers.save_fenced(printer, epoch)
    await uow.commit()


async def check_deadline(printer_id: str, epoch: int, uow: UnitOfWork, clock: Clock) -> None:
    printer = await uow.printers.get(printer_id, for_update=True)
    if printer is None or printer.tracker.job is None:
        return
    command_id = printer.current_command_id
    outcomes = printer.check_deadline(clock())
    if not outcomes:
        return
    _announce(printer, uow, clock)
    _report(printer, outcomes, uow, clock, command_id)
    await uow.printers.save_fenced(printer, epoch)
    await uow.commit()


@dataclass(frozen=True)
class DispatchPlan:
    """What to do with the printer once the dispatch is recorded."""

    printer_id: str
    command: StartPrint


async def start_print(cmd: StartPrint, uow: UnitOfWork, clock: Clock) -> DispatchPlan | None:
    """Record the dispatch, or answer `not_started`/`failed` at once. The caller commits."""
    printer = await uow.printers.get(cmd.printer_id, for_update=True)
    if printer is None:
        uow.emit(_refused(cmd, "unknown printer", "not_started", clock))
        return None
    if printer.current_command_id == cmd.command_id:
        return None
    before = printer.snapshot()
    try:
        printer.dispatch(cmd.job_id, cmd.command_id, cmd.file.kind, clock(), timedelta(seconds=cmd.deadline_seconds))
    except UnprintableFile as exc:
        uow.emit(_refused(cmd, str(exc), "failed", clock))
        return None
    except PrinterError as exc:
        uow.emit(_refused(cmd, str(exc), "not_started", clock))
        return None
    if printer.snapshot() != before:
        _announce(printer, uow, clock)
    await uow.printers.save(printer)
    return DispatchPlan(printer.id, cmd)


def _refused(cmd: StartPrint, reason: str, status: Literal["not_started", "failed"], clock: Clock) -> PrintUpdated:
    """`not_started`: the queue may send the job elsewhere; `failed`: no printer of this kind can print it."""
    return PrintUpdated(
        job_id=cmd.job_id,
        printer_id=cmd.printer_id,
        command_id=cmd.command_id,
        status=status,
        error=reason,
        sequence=0,
        occurred_at=clock(),
    )


async def dispatch_failed(printer_id: str, job_id: str, reason: str, uow: UnitOfWork, clock: Clock) -> None:
    printer = await uow.printers.get(printer_id, for_update=True)
    if printer is None or printer.current_job_id != job_id:
        return
    command_id = printer.current_command_id
    printer.dispatch_failed(job_id)
    _announce(printer, uow, clock)
    _report(printer, [PrintOutcome(job_id, "not_started", error=reason)], uow, clock, command_id)
    await uow.printers.save(printer)
    await uow.commit()


async def stop_print(cmd: StopPrint, uow: UnitOfWork) -> bool:
    """True when the printer is printing that job and must be told to stop."""
    printer = await uow.printers.get(cmd.printer_id)
    return printer is not None and printer.current_job_id == cmd.job_id
