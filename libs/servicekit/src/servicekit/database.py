"""Async engine and the outbox/inbox tables every service's schema includes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled connection that waited longer than this is pinged before it is used (a database restart or a
proxy's idle timeout may have closed it meanwhile); one back in the pool more recently goes straight to work.
SQLAlchemy's `pool_pre_ping` pings at every checkout, and asyncpg's ping is three round trips (BEGIN, a
query, ROLLBACK): that was six of the round trips between a printer turning ready and its StartPrint."""


def create_engine(
    url: str, *, pool_size: int = 10, ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS
) -> AsyncEngine:
    # Last in, first out: a steady trickle of messages keeps reusing the connection that just came back, with its
    # prepared statements and its server process's caches warm (and younger than the ping's idle limit). First in,
    # first out rotated through every pooled connection: one that had not run a statement yet prepared it first,
    # a round trip more, and at under two checkouts a second each one waited over 5 s and was pinged.
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=20, pool_use_lifo=True)
    ping_when_idle(engine, ping_after_idle_seconds)
    unreachable_as_operational_error(engine)
    return engine


def unreachable_as_operational_error(engine: AsyncEngine) -> None:
    """A connection that cannot be made because the server is out of reach fails as SQLAlchemy's
    `OperationalError`, whatever asyncpg raised: a refused or missing socket comes out of asyncpg as a bare
    `OSError` and a server starting up or shutting down as a generic `DBAPIError`, so during a PostgreSQL
    restart a request answered 500 instead of the 503 an `OperationalError` gets (`servicekit.problems`).
    A server that answers and refuses (a wrong password, a missing database) keeps its own error."""

    def connect(dialect: Any, record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            if not out_of_reach(exc):
                raise
            raise dialect.loaded_dbapi.OperationalError(f"the database is out of reach: {exc!r}", exc) from exc

    sa.event.listen(engine.sync_engine, "do_connect", connect)


def out_of_reach(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, says the server could not be reached or is not taking
    connections: a socket error, asyncpg's connection errors (SQLSTATE class 08) and a server starting up or
    shutting down (57P01-57P03)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, *_UNREACHABLE_SERVER)):
            return True
        current = current.__cause__ or current.__context__
    return False


_UNREACHABLE_SERVER: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


def ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections idle over `idle_seconds` only. A ping that fails
    raises `DisconnectionError`, on which the pool replaces the connection and tries again (as
    `pool_pre_ping` does). A connection that died within the window fails its first statement instead;
    SQLAlchemy then invalidates the pool's older connections too, and the caller's retry (a consumer's
    redelivery, a client's) finds new ones."""
    pool = engine.sync_engine.pool

    def fresh(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError(f"pooled connection idle since {idle_since} is gone: {exc!r}") from exc

    sa.event.listen(pool, "connect", fresh)
    sa.event.listen(pool, "checkin", fresh)
    sa.event.listen(pool, "checkout", check)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """Messages committed with the state change that caused them, published later by the relay.

    The envelope is `json`, kept as the text it was written as: the relay sends that text as it is, and
    PostgreSQL only checks it is JSON (as `jsonb` it parsed every envelope into its binary form and rendered it
    back at relay time: a third of a 20,000-job order's ingest). Its traceparent (the NATS header) has a column
    of its own, so the relay never opens the JSON: a value `jsonb` refuses (`\\u0000`) would make every
    `envelope ->> ...` fail, and with it the relay's whole batch."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("envelope", JSON, nullable=False),
        sa.Column("traceparent", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Index("ix_outbox_unpublished", "seq", postgresql_where=sa.text("published_at IS NULL")),
    )


def inbox_table(metadata: sa.MetaData) -> sa.Table:
    """Message ids a consumer has already applied: the second delivery is a no-op."""
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.String(128), primary_key=True),
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def _alembic_config(alembic_ini: Path, database_url: str) -> Any:
    from alembic.config import Config

    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def run_migrations(alembic_ini: Path, database_url: str) -> None:
    """The pre-start step: bring the service's schema to head before it serves anything."""
    from alembic import command

    command.upgrade(_alembic_config(alembic_ini, database_url), "head")


async def migrations_at_head(alembic_ini: Path, database_url: str) -> bool:
    """True once the database's schema revision is the newest this code knows."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(alembic_ini, database_url)).get_heads())
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(lambda sync: set(MigrationContext.configure(sync).get_current_heads()))
    except Exception:
        return False
    finally:
        await engine.dispose()
    return current == heads
