"""The pool pings a connection before use only after it sat idle past the window (servicekit.database)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.database import create_engine
from servicekit.testing import wait_until

from .test_outbox_inbox import database, servers  # noqa: F401  (fixtures: embedded PostgreSQL, a fresh database)

pytestmark = pytest.mark.integration


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(url: str, pid: int) -> None:
    """Ends `pid`'s backend from another engine, as a database restart would, and waits until it is gone."""
    admin = create_engine(url)
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        async def gone() -> bool:
            async with admin.connect() as conn:
                found = await conn.execute(sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
                return found.first() is None

        await wait_until(gone, 10, "the terminated backend to leave pg_stat_activity")
    finally:
        await admin.dispose()


async def test_a_connection_idle_past_the_window_is_pinged_and_replaced_when_dead(database: str) -> None:  # noqa: F811
    engine = create_engine(database, ping_after_idle_seconds=0.0)
    try:
        first = await backend_pid(engine)
        await terminate(database, first)
        assert await backend_pid(engine) != first  # no error: the ping found it dead and the pool reconnected
    finally:
        await engine.dispose()


async def test_a_connection_back_within_the_window_goes_to_work_without_a_ping(database: str) -> None:  # noqa: F811
    engine = create_engine(database, ping_after_idle_seconds=3600.0)
    try:
        first = await backend_pid(engine)
        await terminate(database, first)
        with pytest.raises(sa.exc.DBAPIError) as failed:
            await backend_pid(engine)  # not pinged: its first statement meets the closed connection
        assert failed.value.connection_invalidated
        assert await backend_pid(engine) != first  # the pool replaced it for the next user
    finally:
        await engine.dispose()


async def test_the_pool_hands_out_the_connection_that_came_back_last(database: str) -> None:  # noqa: F811
    """Last in, first out: a trickle of work keeps one warm connection (its prepared statements, its server
    process's caches) instead of rotating through every pooled one."""
    engine = create_engine(database)
    try:
        async with engine.connect() as first, engine.connect() as second:
            pids = [
                int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()) for conn in (first, second)
            ]
            await first.close()  # back first; `second` comes back last, when the block ends
        assert [await backend_pid(engine) for _ in range(3)] == [pids[1]] * 3
    finally:
        await engine.dispose()
