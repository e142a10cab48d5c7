"""The printer gateway's status writes on real PostgreSQL: many reports in one transaction, each printer's row,
utilisation history and messages as one report at a time would leave them; a printer a newer lease holds is
left as that holder wrote it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import printer_gateway
from printer_gateway.adapters import orm
from printer_gateway.domain import commands
from printer_gateway.domain.printer_status import PrinterStatus
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.handlers import Deps
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork
from servicekit.inbox import Inbox
from servicekit.outbox import Outbox
from servicekit.secrets import SecretCipher

from .scratch_database import migrated_database

pytestmark = pytest.mark.integration

ALEMBIC_INI = Path(printer_gateway.__file__).resolve().parents[2] / "alembic.ini"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
IDLE = PrinterStatus(online=True, state="idle", gcode_state="IDLE")
RUNNING = PrinterStatus(online=True, state="printing", gcode_state="RUNNING", progress_percent=40)
DEPS = Deps(clock=lambda: T0, cipher=SecretCipher(Fernet.generate_key().decode()))


@pytest.fixture(scope="module")
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_database("printer_gateway_sql", ALEMBIC_INI) as made:
        yield made


def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> PrinterGatewayUnitOfWork:
    return PrinterGatewayUnitOfWork(
        sessions=sessions, outbox=Outbox(orm.outbox, source="/test"), inbox=Inbox(orm.inbox)
    )


async def register(sessions: async_sessionmaker[AsyncSession], name: str) -> str:
    cmd = commands.RegisterPrinter(
        name=name, model="P1S", protocol="bambu_lan", host="127.0.0.1", port=8883, ftp_port=990,
        serial=None, secret="12345678", ca_cert=None, tags=[], fabmatic=False,
    )
    return (await handlers.register_printer(cmd, unit_of_work(sessions), DEPS)).id


async def test_reports_of_many_printers_in_one_transaction_leave_what_one_at_a_time_would(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    batched = [await register(sessions, f"batched-{n}") for n in range(3)]
    alone = [await register(sessions, f"alone-{n}") for n in range(3)]
    taken = await register(sessions, "taken")
    async with sessions() as session, session.begin():
        await session.execute(sa.update(orm.printers).where(orm.printers.c.id == taken).values(lease_epoch=5))

    def reports(ids: list[str], status: PrinterStatus) -> list[commands.ObserveStatus]:
        return [commands.ObserveStatus(printer_id, status, 2, "gw-1") for printer_id in ids]

    together = commands.ObserveStatuses(
        (*reports(batched, IDLE), *reports([taken], IDLE), *reports(batched[:1], RUNNING))
    )
    stale = await handlers.observe_statuses(together, unit_of_work(sessions), DEPS)
    one_at_a_time = [
        await handlers.observe_statuses(commands.ObserveStatuses((report,)), unit_of_work(sessions), DEPS)
        for report in [*reports(alone, IDLE), *reports(alone[:1], RUNNING)]
    ]

    assert stale == {taken}
    assert one_at_a_time == [frozenset()] * 4
    async with sessions() as session:
        ids = [*batched, *alone, taken]
        rows = {r.id: r for r in await session.execute(sa.select(orm.printers).where(orm.printers.c.id.in_(ids)))}
        states = await session.execute(sa.select(orm.printer_states.c.printer_id, orm.printer_states.c.state))
        history: dict[str, list[str]] = {}
        for printer_id, state in states:
            history.setdefault(printer_id, []).append(state)
        messages: dict[str, int] = {}
        for (envelope,) in await session.execute(sa.select(orm.outbox.c.envelope)):
            messages[envelope["subject"]] = messages.get(envelope["subject"], 0) + 1

    def seen(printer_id: str) -> tuple[object, ...]:
        row = rows[printer_id]
        state = row.status["state"]
        return (state, row.owner, row.lease_epoch, row.revision, history[printer_id], messages[printer_id])

    assert [seen(p) for p in batched] == [seen(p) for p in alone]
    assert seen(batched[0])[:3] == ("printing", "gw-1", 2) and seen(batched[1])[:3] == ("idle", "gw-1", 2)
    assert history[batched[0]] == ["offline", "idle", "printing"] and history[batched[1]] == ["offline", "idle"]
    assert (rows[taken].lease_epoch, rows[taken].owner, rows[taken].status["state"]) == (5, None, "offline")
    assert history[taken] == ["offline"] and messages[taken] == 1  # as registered, nothing more
