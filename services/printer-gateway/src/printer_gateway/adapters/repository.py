"""Printers in PostgreSQL. Writes from a replica whose lease epoch is older than the row's are refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from printer_gateway.adapters.orm import SERIAL_INDEX, printer_states, printers
from printer_gateway.domain.errors import SerialTaken
from printer_gateway.domain.lifecycle import PrintTracker
from printer_gateway.domain.model import Printer
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus
from printer_gateway.domain.utilisation import StateChange, UtilisationState


class StaleLease(Exception):
    """Another replica took the printer over; this one must stop writing for it."""


def status_to_record(status: PrinterStatus) -> dict[str, Any]:
    record = dataclasses.asdict(status)
    record["hms_codes"] = list(status.hms_codes)
    record["materials"] = [dataclasses.asdict(m) for m in status.materials]
    return record


def status_from_record(record: dict[str, Any]) -> PrinterStatus:
    fields = {f.name for f in dataclasses.fields(PrinterStatus)}
    values = {k: v for k, v in record.items() if k in fields}
    values["hms_codes"] = tuple(values.get("hms_codes") or ())
    values["materials"] = tuple(LoadedMaterial(**m) for m in values.get("materials") or ())
    return PrinterStatus(**values)


def _to_domain(row: sa.Row[Any]) -> Printer:
    return Printer(
        id=row.id,
        name=row.name,
        model=row.model,
        protocol=row.protocol,
        host=row.host,
        port=row.port,
        ftp_port=row.ftp_port,
        camera_port=row.camera_port,
        serial=row.serial,
        tags=list(row.tags),
        fabmatic=row.fabmatic,
        ca_cert=row.ca_cert,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tracker=PrintTracker.from_record(row.tracker),
        status=status_from_record(row.status),
        current_command_id=row.current_command_id,
        job_sequence=row.job_sequence,
        revision=row.revision,
        idle_since=row.idle_since,
        connection_version=row.connection_version,
        lease_epoch=row.lease_epoch,
        owner=row.owner,
        note=row.note,
        deleted=row.deleted,
        operator_materials=tuple(LoadedMaterial(**m) for m in row.operator_materials or ()),
    )


def _values(printer: Printer) -> dict[str, Any]:
    return {
        "name": printer.name,
        "model": printer.model,
        "protocol": printer.protocol,
        "host": printer.host,
        "port": printer.port,
        "ftp_port": printer.ftp_port,
        "camera_port": printer.camera_port,
        "serial": printer.serial,
        "ca_cert": printer.ca_cert,
        "tags": printer.tags,
        "fabmatic": printer.fabmatic,
        "tracker": printer.tracker.as_record(),
        "status": status_to_record(printer.status),
        "current_command_id": printer.current_command_id,
        "job_sequence": printer.job_sequence,
        "revision": printer.revision,
        "idle_since": printer.idle_since,
        "connection_version": printer.connection_version,
        "lease_epoch": printer.lease_epoch,
        "owner": printer.owner,
        "note": printer.note,
        "deleted": printer.deleted,
        "operator_materials": [dataclasses.asdict(m) for m in printer.operator_materials],
        "created_at": printer.created_at,
        "updated_at": printer.updated_at,
    }


class PrinterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, printer: Printer, access_code_encrypted: bytes) -> None:
        values = _values(printer)
        await self._write(
            printer, sa.insert(printers).values(id=printer.id, access_code_encrypted=access_code_encrypted, **values)
        )

    async def get(self, printer_id: str, *, for_update: bool = False) -> Printer | None:
        query = sa.select(printers).where(printers.c.id == printer_id, sa.not_(printers.c.deleted))
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return _to_domain(row) if row else None

    async def get_many(self, printer_ids: Sequence[str], *, for_update: bool = False) -> dict[str, Printer]:
        """The live printers among `printer_ids`; `for_update` locks their rows in id order (two transactions locking
        overlapping sets wait for each other instead of deadlocking)."""
        query = (
            sa.select(printers)
            .where(printers.c.id.in_(sorted(set(printer_ids))), sa.not_(printers.c.deleted))
            .order_by(printers.c.id)
        )
        if for_update:
            query = query.with_for_update()
        return {row.id: _to_domain(row) for row in (await self.session.execute(query)).all()}

    async def serial_taken(self, serial: str, except_id: str | None = None) -> str | None:
        query = sa.select(printers.c.id).where(printers.c.serial == serial, sa.not_(printers.c.deleted))
        if except_id:
            query = query.where(printers.c.id != except_id)
        return (await self.session.execute(query)).scalar()

    async def list(self, *, tag: str | None, after: tuple[str, str] | None, limit: int) -> list[Printer]:
        query = sa.select(printers).where(sa.not_(printers.c.deleted))
        if tag:
            query = query.where(printers.c.tags.contains([tag]))
        if after:
            query = query.where(sa.tuple_(printers.c.name, printers.c.id) > sa.tuple_(*after))
        query = query.order_by(printers.c.name, printers.c.id).limit(limit)
        return [_to_domain(r) for r in (await self.session.execute(query)).all()]

    async def live_connection_versions(self) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(printers.c.id, printers.c.connection_version).where(sa.not_(printers.c.deleted))
        )
        return {r.id: r.connection_version for r in rows}

    async def dispatches_past_deadline(self, now: datetime) -> set[str]:
        """Printers whose dispatched job has not started and whose start deadline has passed."""
        job = printers.c.tracker["job"]
        query = sa.select(printers.c.id).where(
            sa.not_(printers.c.deleted),
            job["started"].astext == "false",
            sa.cast(job["start_deadline"].astext, sa.DateTime(timezone=True)) <= now,
        )
        return {str(printer_id) for printer_id in (await self.session.execute(query)).scalars()}

    async def connection_details(self, printer_ids: Sequence[str]) -> dict[str, tuple[Printer, bytes]]:
        """Live printers with their encrypted access codes, for connecting to them."""
        query = sa.select(printers).where(printers.c.id.in_(printer_ids), sa.not_(printers.c.deleted))
        rows = (await self.session.execute(query)).all()
        return {row.id: (_to_domain(row), row.access_code_encrypted) for row in rows}

    async def encrypted_secret(self, printer_id: str) -> bytes | None:
        """One printer's encrypted access code or API key."""
        query = sa.select(printers.c.access_code_encrypted).where(printers.c.id == printer_id)
        token = (await self.session.execute(query)).scalar()
        return bytes(token) if token is not None else None

    async def encrypted_access_codes(self) -> dict[str, bytes]:
        """Every stored access code (deleted printers' too: they are secrets at rest all the same)."""
        rows = (await self.session.execute(sa.select(printers.c.id, printers.c.access_code_encrypted))).all()
        return {str(row.id): bytes(row.access_code_encrypted) for row in rows}

    async def replace_access_code(self, printer_id: str, old: bytes, new: bytes) -> bool:
        """Swap the ciphertext only if it is still `old`: a code set meanwhile by PATCH wins."""
        result = await self.session.execute(
            sa.update(printers)
            .where(printers.c.id == printer_id, printers.c.access_code_encrypted == old)
            .values(access_code_encrypted=new)
            .returning(printers.c.id)
        )
        return result.first() is not None

    async def save(self, printer: Printer, *, access_code_encrypted: bytes | None = None) -> None:
        values = _values(printer)
        if access_code_encrypted is not None:
            values["access_code_encrypted"] = access_code_encrypted
        await self._write(printer, sa.update(printers).where(printers.c.id == printer.id).values(**values))

    async def _write(self, printer: Printer, statement: sa.Executable) -> None:
        """A serial registered by a concurrent request between the handler's check and this write is the same
        conflict as one the check found (409), not a server error."""
        try:
            await self.session.execute(statement)
        except IntegrityError as exc:
            if SERIAL_INDEX in str(exc.orig) and printer.serial:
                raise SerialTaken(printer.serial) from exc
            raise

    async def save_fenced(self, printer: Printer, epoch: int) -> None:
        """Save on behalf of the lease holder with `epoch`; a newer holder's row wins."""
        values = _values(printer)
        values["lease_epoch"] = epoch
        result = await self.session.execute(
            sa.update(printers)
            .where(printers.c.id == printer.id, printers.c.lease_epoch <= epoch)
            .values(**values)
            .returning(printers.c.id)
        )
        if result.first() is None:
            raise StaleLease(printer.id)

    async def save_many_fenced(self, saves: Sequence[tuple[Printer, int]]) -> None:
        """`save_fenced` for many printers in one statement, each on behalf of its lease `epoch`. The caller holds
        their rows locked and has left out those a newer holder has (`lease_epoch` above its epoch): a row the
        fence refuses here is skipped without a word, as the statement cannot say which."""
        if not saves:
            return
        rows = [
            {**_values(printer), "lease_epoch": epoch, "_id": printer.id, "_epoch": epoch} for printer, epoch in saves
        ]
        # SET takes the keys named as columns; `_id` and `_epoch` are only the WHERE's.
        statement = sa.update(printers).where(
            printers.c.id == sa.bindparam("_id"), printers.c.lease_epoch <= sa.bindparam("_epoch")
        )
        await self.session.execute(statement, rows)

    async def record_state(self, printer_id: str, state: UtilisationState, at: datetime) -> None:
        """A printer entered `state` at `at` (committed with the status that caused it)."""
        await self.record_states([StateChange(printer_id, state, at)])

    async def record_states(self, changes: Sequence[StateChange]) -> None:
        """`record_state` for each of `changes`, in one statement."""
        if changes:
            values = [{"printer_id": c.printer_id, "state": c.state, "at": c.at} for c in changes]
            await self.session.execute(sa.insert(printer_states), values)

    async def state_history(self, since: datetime, until: datetime) -> tuple[StateChange, ...]:
        """Every change in [since, until) and, per printer, the last one before `since` (the state the window
        starts in)."""
        t = printer_states
        before = (
            sa.select(t.c.printer_id, t.c.state, t.c.at)
            .where(t.c.at < since)
            .distinct(t.c.printer_id)
            .order_by(t.c.printer_id, t.c.at.desc(), t.c.id.desc())
        )
        within = sa.select(t.c.printer_id, t.c.state, t.c.at).where(t.c.at >= since, t.c.at < until)
        rows = [*(await self.session.execute(before)).all(), *(await self.session.execute(within)).all()]
        return tuple(StateChange(str(r.printer_id), r.state, r.at) for r in rows)
