"""The gateway's write use cases on the in-memory unit of work: each commits its own work, or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from printer_gateway_fakes import InMemoryUnitOfWork

from contracts.printers.v1 import PrinterChanged
from printer_gateway.domain import commands
from printer_gateway.domain.errors import PrinterNotFound, SerialTaken, WrongSecretField
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.handlers import Deps
from servicekit.secrets import SecretCipher

T0 = datetime(2026, 3, 10, 8, 30, tzinfo=UTC)
T1 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
CIPHER_KEY = Fernet.generate_key().decode()
CIPHER = SecretCipher(CIPHER_KEY)


def deps(at: datetime = T0) -> Deps:
    return Deps(clock=lambda: at, ids=lambda: "p1", cipher=CIPHER)


def registration(
    protocol: str = "moonraker", serial: str | None = None, secret: str = "key"
) -> commands.RegisterPrinter:
    return commands.RegisterPrinter(
        name="Voron",
        model="Voron 2.4",
        protocol=protocol,
        host="10.0.0.7",
        port=7125,
        ftp_port=990,
        serial=serial,
        secret=secret,
        ca_cert=None,
        tags=[],
        fabmatic=False,
    )


async def registered(protocol: str = "moonraker", serial: str | None = None) -> InMemoryUnitOfWork:
    uow = InMemoryUnitOfWork()
    await handlers.register_printer(registration(protocol, serial), uow, deps())
    return uow


async def test_a_registration_commits_the_printer_its_encrypted_secret_and_its_announcement() -> None:
    uow = await registered()

    assert uow.commits == 1
    assert uow.state.printers["p1"].created_at == T0
    assert CIPHER.decrypt(uow.state.secrets["p1"]) == "key"
    assert [type(m) for m in uow.messages] == [PrinterChanged]


async def test_a_serial_already_registered_is_refused_and_nothing_is_committed() -> None:
    uow = await registered("bambu_lan", serial="01P00A1")
    other = Deps(clock=lambda: T0, ids=lambda: "p2", cipher=CIPHER)

    with pytest.raises(SerialTaken):
        await handlers.register_printer(registration("bambu_lan", serial="01P00A1"), uow, other)

    assert uow.commits == 1 and list(uow.state.printers) == ["p1"]


async def test_the_secret_under_the_other_protocols_name_is_refused_naming_that_field() -> None:
    uow = await registered("moonraker")

    with pytest.raises(WrongSecretField) as refused:
        await handlers.update_printer(commands.UpdatePrinter("p1", {"name": "V"}, {"access_code": "x"}), uow, deps())

    assert refused.value.errors == [
        {"field": "access_code", "message": "a moonraker printer takes api_key, not access_code"}
    ]
    assert uow.commits == 1 and uow.state.printers["p1"].name == "Voron"


async def test_a_new_api_key_is_stored_encrypted_and_makes_the_gateway_reconnect() -> None:
    uow = await registered("moonraker")
    before = uow.state.printers["p1"].connection_version

    printer = await handlers.update_printer(commands.UpdatePrinter("p1", {}, {"api_key": "new"}), uow, deps(T1))

    assert printer.updated_at == T1
    assert uow.commits == 2
    assert CIPHER.decrypt(uow.state.secrets["p1"]) == "new"
    assert uow.state.printers["p1"].connection_version == before + 1


async def test_a_deleted_printer_is_announced_and_then_unknown() -> None:
    uow = await registered()

    await handlers.delete_printer(commands.DeletePrinter("p1"), uow, deps(T1))

    deleted = uow.messages[-1]
    assert isinstance(deleted, PrinterChanged) and deleted.deleted and deleted.updated_at == T1
    with pytest.raises(PrinterNotFound):
        await handlers.clear_bed(commands.ClearBed("p1"), uow, deps())


async def test_old_codes_are_reencrypted_under_the_newest_key_once() -> None:
    uow = await registered()
    newest = Fernet.generate_key().decode()
    rotated = Deps(cipher=SecretCipher(f"{newest},{CIPHER_KEY}"))

    assert await handlers.reencrypt_access_codes(commands.ReencryptAccessCodes(), uow, rotated) == 1
    assert await handlers.reencrypt_access_codes(commands.ReencryptAccessCodes(), uow, rotated) == 0
    assert SecretCipher(newest).decrypt(uow.state.secrets["p1"]) == "key"
