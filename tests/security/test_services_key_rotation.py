"""The printer secret key can be rotated without downtime: PRINTER_SECRET_KEY holds several Fernet keys
(newest first), every one of them decrypts, and the gateway re-encrypts stored access codes under the
newest so the old key can be dropped. On a printer-gateway database of its own (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from devstack import Stack
from devstack.postgres import database_url, drop_databases, ensure_databases
from printer_gateway.adapters import orm
from printer_gateway.domain import commands
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.handlers import Deps
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork
from servicekit.database import create_engine, run_migrations, session_factory
from servicekit.inbox import Inbox
from servicekit.outbox import Outbox
from servicekit.secrets import SecretCipher

pytestmark = pytest.mark.integration

ALEMBIC_INI = Path(handlers.__file__).resolve().parents[3] / "alembic.ini"
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_a_key_list_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    old = SecretCipher(OLD, setting="PRINTER_SECRET_KEY")
    rotating = SecretCipher(f"{NEW}, {OLD}", setting="PRINTER_SECRET_KEY")

    token = old.encrypt("12345678")

    assert rotating.decrypt(token) == "12345678"
    assert not rotating.is_current(token)
    assert SecretCipher(NEW, setting="PRINTER_SECRET_KEY").decrypt(rotating.encrypt("87654321")) == "87654321"
    with pytest.raises(ValueError, match="PRINTER_SECRET_KEY"):
        SecretCipher(NEW, setting="PRINTER_SECRET_KEY").decrypt(token)
    with pytest.raises(ValueError, match="no Fernet key"):
        SecretCipher(" , ", setting="PRINTER_SECRET_KEY")


@pytest.fixture
async def uow_factory(stack: Stack) -> AsyncIterator[object]:
    if stack.postgres is None:
        pytest.skip("needs the stack's own PostgreSQL server to create a scratch database")
    server = stack.postgres.server_url
    name = f"printer_gateway_rotation_{uuid.uuid4().hex[:8]}"
    await ensure_databases(server, [name])
    url = database_url(server, name)
    await asyncio.to_thread(run_migrations, ALEMBIC_INI, url)
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    outbox, inbox = Outbox(orm.outbox, source="/services/printer-gateway"), Inbox(orm.inbox)

    def factory() -> PrinterGatewayUnitOfWork:
        return PrinterGatewayUnitOfWork(sessions=sessions, outbox=outbox, inbox=inbox)

    try:
        yield factory
    finally:
        await engine.dispose()
        await drop_databases(server, [name])


async def test_stored_codes_are_reencrypted_under_the_newest_key_so_the_old_one_can_go(uow_factory: object) -> None:
    assert callable(uow_factory)
    counter = itertools.count(1)

    def clock() -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    old = Deps(
        clock=clock, ids=lambda: f"printer-{next(counter)}", cipher=SecretCipher(OLD, setting="PRINTER_SECRET_KEY")
    )
    codes = {}
    for n in range(3):
        reg = commands.RegisterPrinter(
            name=f"p{n}", model="X1C", protocol="bambu_lan", host="127.0.0.1", port=8883, ftp_port=990,
            serial=f"ROT{n}", secret=f"code-{n}", ca_cert=None, tags=[], fabmatic=False,
        )  # fmt: skip
        printer = await handlers.register_printer(reg, uow_factory(), old)
        codes[printer.id] = f"code-{n}"

    rotating = Deps(cipher=SecretCipher(f"{NEW},{OLD}", setting="PRINTER_SECRET_KEY"))
    assert await handlers.reencrypt_access_codes(commands.ReencryptAccessCodes(), uow_factory(), rotating) == 3
    assert await handlers.reencrypt_access_codes(commands.ReencryptAccessCodes(), uow_factory(), rotating) == 0

    new_only = SecretCipher(NEW, setting="PRINTER_SECRET_KEY")
    async with uow_factory() as uow:
        stored = await uow.printers.encrypted_access_codes()
    assert {printer_id: new_only.decrypt(token) for printer_id, token in stored.items()} == codes
