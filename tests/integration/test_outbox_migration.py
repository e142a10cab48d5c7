"""Every service's migration that keeps outbox envelopes as written (`json`, traceparent in its own column) goes up
from the head before it on a database holding outbox rows, published and not: the rows keep their messages, the
relay then sends each unpublished one with its traceparent, and the migration goes down and up again."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from contracts.envelope import Envelope
from devstack.postgres import EmbeddedPostgres, database_url, ensure_databases
from servicekit.database import create_engine, outbox_table, session_factory
from servicekit.outbox import OutboxRelay

pytestmark = pytest.mark.integration

SERVICES = sorted(path.parent.name for path in (Path(__file__).parents[2] / "services").glob("*/alembic.ini"))
TRACEPARENT = f"00-{0xABC:032x}-{0xDEF:016x}-01"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="printfarm-outbox-migration-"))
    postgres = EmbeddedPostgres(folder / "pg", folder / "postgres.log", fsync=False, reuse_initdb=True)
    await postgres.start(120)
    try:
        yield postgres.server_url
    finally:
        await postgres.stop(30)
        shutil.rmtree(folder, ignore_errors=True)


def alembic_config(service: str, url: str) -> Config:
    alembic_ini = Path(__file__).parents[2] / "services" / service / "alembic.ini"
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def envelope(value: str, traceparent: str | None) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()), type="x.v1.thing.happened", source="/test", time=datetime(2026, 12, 5, tzinfo=UTC),
        data={"value": value, "nested": {"list": [1, 2.5, None, True]}}, traceparent=traceparent,
    )


@pytest.mark.parametrize("service", SERVICES)
async def test_the_outbox_migration_keeps_every_row_and_the_relay_sends_them(server: str, service: str) -> None:
    name = f"outbox_{service.replace('-', '_')}"
    await ensure_databases(server, [name])
    url = database_url(server, name).replace("postgresql://", "postgresql+asyncpg://", 1)
    config = alembic_config(service, url)
    (migration,) = [
        script for script in ScriptDirectory.from_config(config).walk_revisions()
        if script.path.endswith("_outbox_envelope_as_written.py")
    ]
    before = migration.down_revision
    assert isinstance(before, str)
    await asyncio.to_thread(command.upgrade, config, before)

    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        unpublished = [envelope("é \" \\ ✓", TRACEPARENT), envelope("plain", None)]
        published = envelope("gone", TRACEPARENT)
        async with engine.begin() as conn:
            for sent, e in [(False, unpublished[0]), (True, published), (False, unpublished[1])]:
                await conn.execute(
                    sa.text(
                        "INSERT INTO outbox (message_id, subject, envelope, published_at)"
                        " VALUES (:id, :subject, CAST(:envelope AS jsonb), CASE WHEN :sent THEN now() END)"
                    ),
                    {"id": e.id, "subject": e.type, "envelope": e.model_dump_json(), "sent": sent},
                )

        await asyncio.to_thread(command.upgrade, config, migration.revision)
        assert await column_types(engine) == {"envelope": "json", "traceparent": "text"}
        relayed = await relay(sessions)
        assert [(Envelope.model_validate_json(payload), header) for payload, header in relayed] == [
            (e, e.traceparent) for e in unpublished
        ]
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT message_id, envelope FROM outbox ORDER BY seq"))).all()
        assert [(r.message_id, Envelope.model_validate(r.envelope)) for r in rows] == [
            (e.id, e) for e in [unpublished[0], published, unpublished[1]]
        ]

        await asyncio.to_thread(command.downgrade, config, before)
        assert await column_types(engine) == {"envelope": "jsonb"}
        await asyncio.to_thread(command.upgrade, config, "head")
        assert await column_types(engine) == {"envelope": "json", "traceparent": "text"}
    finally:
        await engine.dispose()


async def column_types(engine: Any) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'outbox' AND column_name IN ('envelope', 'traceparent')"
            )
        )
        return {r.column_name: r.data_type for r in rows}


async def relay(sessions: Any) -> list[tuple[bytes, str | None]]:
    """What the relay sends for the unpublished rows: each payload with its traceparent header."""
    sent: list[tuple[bytes, str | None]] = []

    async def publish_encoded(subject: str, message_id: str, payload: bytes, traceparent: str | None) -> None:
        sent.append((payload, traceparent))

    async def publish(envelope: Envelope) -> None:
        raise AssertionError("every row fits inline")

    table = outbox_table(sa.MetaData())
    relay = OutboxRelay(sessions, table, publish, publish_encoded=publish_encoded)
    assert await relay.relay_once() == 2
    return sent
