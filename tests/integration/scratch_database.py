"""A service's schema on a PostgreSQL of the test's own: for tests of one service's SQL without a whole stack."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devstack.postgres import EmbeddedPostgres, database_url, ensure_databases
from servicekit.database import create_engine, run_migrations, session_factory


@contextlib.asynccontextmanager
async def migrated_database(name: str, alembic_ini: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An embedded PostgreSQL (no fsync) in a temporary folder, database `name` migrated to head; gone after."""
    folder = Path(tempfile.mkdtemp(prefix=f"printfarm-{name}-"))
    server = EmbeddedPostgres(folder / "pg", folder / "postgres.log", fsync=False, reuse_initdb=True)
    await server.start(120)
    try:
        await ensure_databases(server.server_url, [name])
        url = database_url(server.server_url, name).replace("postgresql://", "postgresql+asyncpg://", 1)
        await asyncio.to_thread(run_migrations, alembic_ini, url)
        engine = create_engine(url)
        try:
            yield session_factory(engine)
        finally:
            await engine.dispose()
    finally:
        await server.stop(30)
        shutil.rmtree(folder, ignore_errors=True)
