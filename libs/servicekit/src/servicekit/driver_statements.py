"""Fixed text statements run straight on the session's asyncpg connection, inside its transaction: for the few
statements on a latency path where SQLAlchemy's per-execute work (session, compiled cache, result set-up) cost
more CPU than PostgreSQL spent running them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession


class DriverStatement:
    """A `sa.text` statement compiled once for asyncpg (`$n` placeholders, in `names` order). `fetch` runs it on
    the driver once the session's transaction has begun there (asyncpg begins it at the first statement);
    before that it goes through the session, so it never runs outside the caller's transaction. Rows are
    asyncpg records on the driver path, SQLAlchemy rows otherwise: read them by position."""

    def __init__(self, statement: sa.TextClause) -> None:
        compiled = statement.compile(dialect=_ASYNCPG)
        self.statement, self.sql, self.names = statement, str(compiled), list(compiled.positiontup or ())

    async def fetch(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[Any]:
        driver = await transaction_driver(session)
        if driver is None:
            return (await session.execute(self.statement, dict(params))).all()
        rows: Sequence[Any] = await driver.fetch(self.sql, *(params[name] for name in self.names))
        return rows

    async def execute(self, session: AsyncSession, params: Mapping[str, Any]) -> None:
        driver = await transaction_driver(session)
        if driver is None:
            await session.execute(self.statement, dict(params))
        else:
            await driver.execute(self.sql, *(params[name] for name in self.names))


async def transaction_driver(session: AsyncSession) -> Any | None:
    """The asyncpg connection under `session` if its transaction is open there, else None. Remembered for the
    rest of that transaction only (finding it costs two greenlet switches; a later transaction of the session
    may hold another connection)."""
    transaction = session.sync_session.get_transaction()
    if transaction is None:
        return None
    known = session.info.get(_DRIVER)
    if known is not None and known[0] is transaction:
        driver = known[1]
    else:
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        session.info[_DRIVER] = (transaction, driver)
    return driver if driver.is_in_transaction() else None


_ASYNCPG = asyncpg.dialect()  # type: ignore[no-untyped-call]
_DRIVER = "servicekit.driver_statements.driver"
