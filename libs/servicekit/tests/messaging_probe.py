"""A tiny service schema used to test the outbox and inbox against real servers."""

from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa

from contracts.envelope import ContractMessage
from servicekit.database import inbox_table, outbox_table
from servicekit.unit_of_work import SqlUnitOfWork

metadata = sa.MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
effects = sa.Table(
    "effects",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("probe_id", sa.String(64), nullable=False),
    sa.Column("value", sa.Integer, nullable=False),
)


class ProbeHappened(ContractMessage):
    """Borrows a real v1 subject of the skus stream so the declared streams capture it."""

    SUBJECT: ClassVar[str] = "skus.v1.part.changed"

    probe_id: str
    value: int
    blob: str = ""


class ProbeUnitOfWork(SqlUnitOfWork):
    async def record(self, probe_id: str, value: int) -> None:
        await self.session.execute(sa.insert(effects).values(probe_id=probe_id, value=value))
