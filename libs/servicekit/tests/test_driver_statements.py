"""A statement run on the driver (servicekit.driver_statements) stays inside the session's transaction: before
the transaction has begun on the connection it goes through the session, after it on the driver, and a
rollback undoes both; a later transaction of the same session finds its own connection."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from servicekit.database import create_engine, session_factory
from servicekit.driver_statements import DriverStatement, transaction_driver

from .test_outbox_inbox import database, servers  # noqa: F401  (fixtures: embedded PostgreSQL, a fresh database)

pytestmark = pytest.mark.integration

INSERT = DriverStatement(sa.text("INSERT INTO driver_check (n) SELECT unnest(CAST(:ns AS int[]))"))
SUM = DriverStatement(sa.text("SELECT coalesce(sum(n), 0), :label FROM driver_check"))


async def test_a_driver_statement_runs_in_the_session_s_transaction(database: str) -> None:  # noqa: F811
    engine = create_engine(database)
    sessions = session_factory(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE driver_check (n int)"))
        async with sessions() as session:
            async with session.begin():
                assert await transaction_driver(session) is None, "nothing ran yet: asyncpg has not begun"
                await INSERT.execute(session, {"ns": [1, 2]})  # through the session, which begins
                assert await transaction_driver(session) is not None
                await INSERT.execute(session, {"ns": [3]})  # on the driver
                assert [tuple(row) for row in await SUM.fetch(session, {"label": "in"})] == [(6, "in")]
                await session.rollback()
            async with session.begin():
                await session.execute(sa.text("SELECT 1"))
                assert [tuple(row) for row in await SUM.fetch(session, {"label": "after"})] == [(0, "after")]
                await INSERT.execute(session, {"ns": [4]})
        async with sessions() as session:
            assert (await session.execute(sa.text("SELECT sum(n) FROM driver_check"))).scalar_one() == 4
    finally:
        await engine.dispose()
