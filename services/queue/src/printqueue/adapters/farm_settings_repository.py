"""The operator's farm-wide matching settings (one row)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from printqueue.adapters import orm
from printqueue.domain.model import FarmSettings

READ_COLOR_TOLERANCE = sa.select(orm.farm_settings.c.color_tolerance).where(orm.farm_settings.c.id == 1)
"""Built once; the matching pass reads it inside its lock statement (`matching_queries`)."""


def farm_settings_of(color_tolerance: float | None) -> FarmSettings:
    """The settings from the stored tolerance: the defaults while no row was saved (it reads as None)."""
    return FarmSettings(color_tolerance=color_tolerance) if color_tolerance is not None else FarmSettings()


class SqlFarmSettingsRepository:
    """Farm settings; defaults until an operator saves some."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def farm_settings(self) -> FarmSettings:
        return farm_settings_of((await self.session.execute(READ_COLOR_TOLERANCE)).scalar_one_or_none())

    async def save_farm_settings(self, settings: FarmSettings, now: datetime) -> None:
        values = {"color_tolerance": settings.color_tolerance, "updated_at": now}
        stmt = insert(orm.farm_settings).values(id=1, **values)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[orm.farm_settings.c.id], set_=values))
