"""The operator's farm-wide matching settings (one row)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.domain.model import FarmSettings

_READ = sa.select(orm.farm_settings.c.color_tolerance).where(orm.farm_settings.c.id == 1)
"""Built once: every matching pass reads it."""


class SqlFarmSettingsRepository:
    """Farm settings; defaults until an operator saves some."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def farm_settings(self) -> FarmSettings:
        row = (await self.session.execute(_READ)).first()
        return FarmSettings(color_tolerance=row.color_tolerance) if row is not None else FarmSettings()

    async def save_farm_settings(self, settings: FarmSettings, now: datetime) -> None:
        values = {"color_tolerance": settings.color_tolerance, "updated_at": now}
        stmt = insert(orm.farm_settings).values(id=1, **values)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[orm.farm_settings.c.id], set_=values))
