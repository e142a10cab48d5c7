"""Use cases of the printer gateway. Each owns its unit of work: it opens it, commits it, and returns what the
caller needs afterwards; printer I/O happens after the commit, in the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from printer_gateway.domain import commands
from printer_gateway.domain.errors import PrinterNotFound, SerialTaken, WrongSecretField
from printer_gateway.domain.lifecycle import PrintTracker
from printer_gateway.domain.model import Printer, PrinterError, PrintOutcome, UnprintableFile
from printer_gateway.domain.printer_status import PrinterStatus
from printer_gateway.domain.utilisation import StateChange, utilisation_state
from printer_gateway.service_layer import messages
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.secrets import SecretCipher

CONNECTION_FIELDS = frozenset({"host", "port", "ftp_port", "camera_port", "serial", "ca_cert", "secret", "model"})

OWNER_INBOX = "printer_gateway__owner_command"
"""Inbox of the commands the printer's owner carried out: once per envelope id, whichever replica or path
(its own durable, or forwarded by another replica) brought it."""


@dataclass(frozen=True)
class Deps:
    """Injected time and ids, and the cipher the printers' secrets are stored under."""

    clock: Clock = utc_now
    ids: IdFactory = new_id
    cipher: SecretCipher = field(kw_only=True)


def _announce(printer: Printer, uow: PrinterGatewayUnitOfWork, clock: Clock) -> None:
    printer.updated(clock())
    uow.emit(messages.printer_changed(printer), subject_id=printer.id)


def _report(
    printer: Printer, outcomes: list[PrintOutcome], uow: PrinterGatewayUnitOfWork, clock: Clock, command_id: str | None
) -> None:
    for outcome in outcomes:
        sequence = printer.next_sequence()
        uow.emit(messages.print_updated(printer, outcome, command_id, sequence, clock()), subject_id=outcome.job_id)


async def register_printer(cmd: commands.RegisterPrinter, uow: PrinterGatewayUnitOfWork, deps: Deps) -> Printer:
    async with uow:
        taken = await uow.printers.serial_taken(cmd.serial) if cmd.serial else None
        if cmd.serial and taken:
            raise SerialTaken(cmd.serial, taken)
        now = deps.clock()
        printer_id = deps.ids()
        printer = Printer(
            id=printer_id,
            name=cmd.name,
            model=cmd.model,
            protocol=cmd.protocol,
            host=cmd.host,
            port=cmd.port,
            ftp_port=cmd.ftp_port,
            serial=cmd.serial,
            tags=cmd.tags,
            fabmatic=cmd.fabmatic,
            ca_cert=cmd.ca_cert,
            created_at=now,
            updated_at=now,
            tracker=PrintTracker(printer_id=printer_id, bed_clear=True),
            status=PrinterStatus.offline("not connected yet"),
            operator_materials=cmd.materials,
            camera_port=cmd.camera_port,
        )
        printer.updated(now)
        await uow.printers.add(printer, deps.cipher.encrypt(cmd.secret))
        await uow.printers.record_state(printer.id, utilisation_state(printer.status), now)
        uow.emit(messages.printer_changed(printer), subject_id=printer.id)
        await uow.commit()
    return printer


async def update_printer(cmd: commands.UpdatePrinter, uow: PrinterGatewayUnitOfWork, deps: Deps) -> Printer:
    async with uow:
        printer = await uow.printers.get(cmd.printer_id, for_update=True)
        if printer is None:
            raise PrinterNotFound(cmd.printer_id)
        wrong = "api_key" if printer.secret_field == "access_code" else "access_code"
        if wrong in cmd.secrets:
            raise WrongSecretField(printer.protocol, printer.secret_field, wrong)
        changes = dict(cmd.changes)
        serial = changes.get("serial")
        if isinstance(serial, str) and serial != printer.serial:
            taken = await uow.printers.serial_taken(serial, except_id=printer.id)
            if taken:
                raise SerialTaken(serial, taken)
        secret = cmd.secrets.get(printer.secret_field)
        stored = await uow.printers.encrypted_secret(printer.id)
        nothing_to_protect = stored is not None and deps.cipher.decrypt(stored) == ""
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
        _announce(printer, uow, deps.clock)
        encrypted = deps.cipher.encrypt(secret) if secret else None
        await uow.printers.save(printer, access_code_encrypted=encrypted)
        await uow.commit()
    return printer


async def reencrypt_access_codes(cmd: commands.ReencryptAccessCodes, uow: PrinterGatewayUnitOfWork, deps: Deps) -> int:
    """Re-encrypt every stored access code not yet under the newest key, so an old key can be retired.
    Idempotent and safe with several replicas doing it at once; returns how many codes were rewritten."""
    cipher = deps.cipher
    rewritten = 0
    async with uow:
        for printer_id, token in (await uow.printers.encrypted_access_codes()).items():
            if cipher.is_current(token):
                continue
            if await uow.printers.replace_access_code(printer_id, token, cipher.reencrypt(token)):
                rewritten += 1
        await uow.commit()
    return rewritten


async def delete_printer(cmd: commands.DeletePrinter, uow: PrinterGatewayUnitOfWork, deps: Deps) -> None:
    async with uow:
        printer = await uow.printers.get(cmd.printer_id, for_update=True)
        if printer is None:
            raise PrinterNotFound(cmd.printer_id)
        if printer.current_job_id is not None:
            raise PrinterError(f"printer has job {printer.current_job_id}; cancel it first")
        printer.deleted = True
        printer.connection_version += 1
        _announce(printer, uow, deps.clock)
        await uow.printers.save(printer)
        await uow.commit()


async def clear_bed(cmd: commands.ClearBed, uow: PrinterGatewayUnitOfWork, deps: Deps) -> Printer:
    async with uow:
        printer = await uow.printers.get(cmd.printer_id, for_update=True)
        if printer is None:
            raise PrinterNotFound(cmd.printer_id)
        before = printer.snapshot()
        printer.clear_bed(deps.clock())
        if printer.snapshot() != before:
            _announce(printer, uow, deps.clock)
        await uow.printers.save(printer)
        await uow.commit()
    return printer


async def observe_statuses(cmd: commands.ObserveStatuses, uow: PrinterGatewayUnitOfWork, deps: Deps) -> frozenset[str]:
    """Fold status reports into their printers and publish what changed, in one transaction however many: a
    takeover's first statuses (a hundred or more per survivor at once) were a transaction each, every round trip
    waiting for a CPU when it was saturated. Fenced by the lease epoch: returns the printers a newer lease holder
    has, and nothing is written for them. Reports of one printer apply in order."""
    async with uow:
        reports = cmd.reports
        found = await uow.printers.get_many([report.printer_id for report in reports], for_update=True)
        # The rows are locked: a newer holder seen here cannot appear before the commit, nor vanish.
        stale = frozenset(r.printer_id for r in reports if (p := found.get(r.printer_id)) and p.lease_epoch > r.epoch)
        saves: dict[str, tuple[Printer, int]] = {}
        changes: list[StateChange] = []
        now = deps.clock()
        for report in reports:
            printer = found.get(report.printer_id)
            if printer is None or printer.id in stale:
                continue
            if (change := _observe(printer, report, uow, deps, now)) is not None:
                changes.append(change)
            saves[printer.id] = (printer, report.epoch)
        await uow.printers.record_states(changes)
        await uow.printers.save_many_fenced(list(saves.values()))
        await uow.commit()
    return stale


def _observe(
    printer: Printer, report: commands.ObserveStatus, uow: PrinterGatewayUnitOfWork, deps: Deps, now: datetime
) -> StateChange | None:
    """One report folded into `printer` and its messages emitted; the utilisation state it entered, if any."""
    before = printer.snapshot()
    was = utilisation_state(printer.status)
    command_id = printer.current_command_id
    outcomes = printer.observe(report.status, now)
    printer.owner, printer.lease_epoch = report.owner, report.epoch
    if printer.snapshot() != before or outcomes:
        _announce(printer, uow, deps.clock)
    _report(printer, outcomes, uow, deps.clock, command_id)
    state = utilisation_state(printer.status)
    return StateChange(printer.id, state, now) if state != was else None


async def check_deadline(cmd: commands.CheckDeadline, uow: PrinterGatewayUnitOfWork, deps: Deps) -> None:
    async with uow:
        printer = await uow.printers.get(cmd.printer_id, for_update=True)
        if printer is None or printer.tracker.job is None:
            return
        command_id = printer.current_command_id
        outcomes = printer.check_deadline(deps.clock())
        if not outcomes:
            return
        _announce(printer, uow, deps.clock)
        _report(printer, outcomes, uow, deps.clock, command_id)
        await uow.printers.save_fenced(printer, cmd.epoch)
        await uow.commit()


@dataclass(frozen=True)
class DispatchPlan:
    """What to do with the printer once the dispatch is recorded."""

    printer_id: str
    command: commands.StartPrint
    start_deadline: datetime | None = None
    """When the dispatch times out (`PrintTracker.start_deadline`): the start must reach the printer before."""


async def start_print(cmd: commands.StartPrint, uow: PrinterGatewayUnitOfWork, deps: Deps) -> DispatchPlan | None:
    """Record the dispatch, or answer `not_started`/`failed` at once. A plan comes back only the first time
    the envelope is carried out: a StartPrint redelivered after its print ended must not print it again."""
    async with uow:
        uow.caused_by(cmd.envelope)
        if not await uow.claim_inbox(OWNER_INBOX, cmd.envelope.id):
            return None
        plan = await _record_dispatch(cmd, uow, deps.clock)
        await uow.commit()
    return plan


async def _record_dispatch(
    cmd: commands.StartPrint, uow: PrinterGatewayUnitOfWork, clock: Clock
) -> DispatchPlan | None:
    printer = await uow.printers.get(cmd.printer_id, for_update=True)
    if printer is None:
        uow.emit(messages.print_refused(cmd, "unknown printer", "not_started", clock()))
        return None
    if printer.current_command_id == cmd.command_id:
        return None
    before = printer.snapshot()
    now = clock()
    # The time to start runs from when the queue issued the command, as the queue's own deadline does: a command
    # that arrived late (redelivered between owners) has less of it left, not a fresh one.
    waited = max(timedelta(0), now - cmd.issued_at) if cmd.issued_at is not None else timedelta(0)
    left = cmd.deadline - waited
    try:
        printer.dispatch(cmd.job_id, cmd.command_id, cmd.file.kind, now, left)
    except UnprintableFile as exc:
        uow.emit(messages.print_refused(cmd, str(exc), "failed", clock()))
        return None
    except PrinterError as exc:
        uow.emit(messages.print_refused(cmd, str(exc), "not_started", clock()))
        return None
    if printer.snapshot() != before:
        _announce(printer, uow, clock)
    await uow.printers.save(printer)
    return DispatchPlan(printer.id, cmd, now + left)


async def dispatch_failed(cmd: commands.DispatchFailed, uow: PrinterGatewayUnitOfWork, deps: Deps) -> None:
    async with uow:
        printer = await uow.printers.get(cmd.printer_id, for_update=True)
        if printer is None or printer.current_job_id != cmd.job_id:
            return
        command_id = printer.current_command_id
        printer.dispatch_failed(cmd.job_id)
        _announce(printer, uow, deps.clock)
        _report(printer, [PrintOutcome(cmd.job_id, "not_started", error=cmd.reason)], uow, deps.clock, command_id)
        await uow.printers.save(printer)
        await uow.commit()


async def stop_print(cmd: commands.StopPrint, uow: PrinterGatewayUnitOfWork, deps: Deps) -> bool:
    """True when the printer is printing that job and must be told to stop (the first time the envelope is
    carried out only)."""
    async with uow:
        uow.caused_by(cmd.envelope)
        if not await uow.claim_inbox(OWNER_INBOX, cmd.envelope.id):
            return False
        printer = await uow.printers.get(cmd.printer_id)
        await uow.commit()
    return printer is not None and printer.current_job_id == cmd.job_id
