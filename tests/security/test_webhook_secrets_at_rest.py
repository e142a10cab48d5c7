"""Webhook signing secrets are stored only encrypted (WEBHOOK_SECRET_KEY, Fernet keys newest first), like
printer access codes: the gateway's database never holds one in the clear, a row written before they were
encrypted is sealed when the gateway starts, and rotating the key re-encrypts them. On an API-gateway
database of its own (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from api_gateway.adapters import orm
from api_gateway.domain import commands
from api_gateway.service_layer import handlers, views
from api_gateway.service_layer.handlers import Deps
from api_gateway.service_layer.unit_of_work import UnitOfWork
from devstack import Stack
from devstack.postgres import database_url, drop_databases, ensure_databases
from servicekit.database import _alembic_config, create_engine, session_factory
from servicekit.inbox import Inbox
from servicekit.outbox import Outbox
from servicekit.secrets import SecretCipher

pytestmark = pytest.mark.integration

ALEMBIC_INI = Path(handlers.__file__).resolve().parents[3] / "alembic.ini"
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
LEGACY_SECRET = "legacy-plain-secret-0001"
T0 = datetime(2026, 12, 5, tzinfo=UTC)


async def seal_secrets(uow: UnitOfWork) -> int:
    """What the gateway does when it starts."""
    return await handlers.seal_webhook_secrets(commands.SealWebhookSecrets(), uow, Deps())


def cipher(keys: str) -> SecretCipher:
    return SecretCipher(keys, setting="WEBHOOK_SECRET_KEY")


def migrate(url: str, revision: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(ALEMBIC_INI, url), revision)


class Database:
    def __init__(self, url: str, engine: sa.ext.asyncio.AsyncEngine) -> None:
        self.url, self.engine = url, engine
        self.sessions = session_factory(engine)

    def uow_factory(self, keys: str) -> Callable[[], UnitOfWork]:
        secrets = cipher(keys)
        outbox, inbox = Outbox(orm.outbox, source="/services/api-gateway"), Inbox(orm.inbox)
        return lambda: UnitOfWork(secrets=secrets, sessions=self.sessions, outbox=outbox, inbox=inbox)

    async def dump(self) -> str:
        """Every webhook, delivery and attempt row as text: what someone with the database would read."""
        async with self.engine.connect() as conn:
            rows = []
            for table in ("webhooks", "webhook_deliveries", "webhook_attempts"):
                found = await conn.execute(sa.text(f"SELECT row_to_json(t)::text FROM {table} t"))
                rows += [r[0] for r in found]
        return "\n".join(rows)

    async def stored(self) -> dict[str, tuple[str | None, str | None]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT id, secret, secret_token FROM webhooks"))
            return {r.id: (r.secret, r.secret_token) for r in rows}


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[Database]:
    """A scratch gateway database at migration 0003 (secrets in the clear) with one legacy webhook."""
    if stack.postgres is None:
        pytest.skip("needs the stack's own PostgreSQL server to create a scratch database")
    server = stack.postgres.server_url
    name = f"api_gateway_secrets_{uuid.uuid4().hex[:8]}"
    await ensure_databases(server, [name])
    url = database_url(server, name)
    await asyncio.to_thread(migrate, url, "0003")
    engine = create_engine(url, pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO webhooks (id, url, secret, events, enabled, description, created_at, updated_at) "
                "VALUES ('legacy', 'http://127.0.0.1:9/hook', :secret, '[\"order.completed\"]', true, '', :t, :t)"
            ),
            {"secret": LEGACY_SECRET, "t": T0},
        )
    try:
        yield Database(url, engine)
    finally:
        await engine.dispose()
        await drop_databases(server, [name])


async def test_the_migration_and_the_start_seal_a_plain_secret(database: Database) -> None:
    await asyncio.to_thread(migrate, database.url, "head")
    assert (await database.stored())["legacy"] == (LEGACY_SECRET, None)
    uow_factory = database.uow_factory(OLD)
    async with uow_factory() as uow:
        unsealed = await uow.webhooks.get("legacy")
    assert unsealed is not None and unsealed.secret == LEGACY_SECRET  # still signs until the start seals it

    assert await seal_secrets(uow_factory()) == 1
    assert await seal_secrets(uow_factory()) == 0
    plain, token = (await database.stored())["legacy"]
    assert plain is None and token is not None
    assert cipher(OLD).decrypt(token.encode()) == LEGACY_SECRET
    assert LEGACY_SECRET not in await database.dump()
    async with uow_factory() as uow:
        sealed = await uow.webhooks.get("legacy")
    assert sealed is not None and sealed.secret == LEGACY_SECRET


async def test_the_database_never_holds_a_secret_in_the_clear_and_rotation_reencrypts(database: Database) -> None:
    await asyncio.to_thread(migrate, database.url, "head")
    assert await seal_secrets(database.uow_factory(OLD)()) == 1  # what the gateway does when it starts
    counter = itertools.count(1)
    old, deps = database.uow_factory(OLD), Deps(clock=lambda: T0, ids=lambda: f"hook-{next(counter)}")
    secrets = [f"shop-secret-{n}-{uuid.uuid4().hex}" for n in range(3)]
    created = [
        await handlers.create_webhook(commands.CreateWebhook("http://127.0.0.1:9/hook", s, None, True, ""), old(), deps)
        for s in secrets
    ]
    changed = "changed-secret-" + uuid.uuid4().hex
    await handlers.update_webhook(commands.UpdateWebhook(created[0].id, secret=changed), old(), deps)
    await handlers.ping_webhook(commands.PingWebhook(created[1].id), old(), deps)
    secrets[0] = changed

    dump = await database.dump()
    for secret in [*secrets, LEGACY_SECRET]:
        assert secret not in dump
    assert {h.id: h.secret for h in await views.webhooks(old())} == {
        "legacy": LEGACY_SECRET, **{h.id: s for h, s in zip(created, secrets, strict=True)}
    }

    rotating = database.uow_factory(f"{NEW},{OLD}")
    assert await seal_secrets(rotating()) == 4  # every one was under the old key
    assert await seal_secrets(rotating()) == 0
    new_only = cipher(NEW)
    stored = await database.stored()
    assert {i: new_only.decrypt(t.encode()) for i, (p, t) in stored.items() if p is None and t is not None} == {
        "legacy": LEGACY_SECRET, **{h.id: s for h, s in zip(created, secrets, strict=True)}
    }
    with pytest.raises(ValueError, match="WEBHOOK_SECRET_KEY"):
        cipher(OLD).decrypt(stored[created[0].id][1].encode())  # type: ignore[union-attr]
