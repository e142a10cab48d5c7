"""Async engine and the outbox/inbox tables every service's schema includes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """Messages committed with the state change that caused them, published later by the relay."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("envelope", JSONB, nullable=False),
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
