"""A bus delivery to the orders service on real PostgreSQL, step for step as servicekit's bus applies one:
the bus opens the unit of work and marks the inbox, the handler's own `async with uow:` joins that
transaction, so the inbox mark and the handler's work land together or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import Envelope
from orders.adapters import orm
from orders.bootstrap import ALEMBIC_INI
from orders.domain import commands
from orders.domain.errors import SkuCatalogueUnavailable
from orders.domain.model import Sku
from orders.service_layer import handlers
from orders.service_layer.handlers import Deps
from orders.service_layer.unit_of_work import UnitOfWork
from servicekit.inbox import Inbox
from servicekit.outbox import Outbox

from .scratch_database import migrated_database

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DURABLE = "orders__sku_changed"


@pytest.fixture(scope="module")
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_database("orders_sql", ALEMBIC_INI) as made:
        yield made


def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> UnitOfWork:
    return UnitOfWork(sessions=sessions, outbox=Outbox(orm.outbox, source="/test"), inbox=Inbox(orm.inbox))


def envelope(message_id: str) -> Envelope:
    return Envelope(id=message_id, type="skus.v1.sku.changed", source="/services/skus", time=T0, data={})


async def deliver(uow: UnitOfWork, message_id: str, handler: Callable[[UnitOfWork], Awaitable[object]]) -> bool:
    """What `Bus.consume` does with one delivery; True when the handler ran (not a duplicate)."""
    async with uow:
        uow.caused_by(envelope(message_id))
        if not await uow.claim_inbox(DURABLE, message_id):
            return False
        await handler(uow)
        await uow.commit()
        return True


async def test_the_handler_commits_the_inbox_mark_with_its_work_and_a_redelivery_is_a_duplicate(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sku = Sku("sku-joined", "JOIN", "Joined", jobs_per_unit=1, revision=1)

    async def catalogue(ids: list[str]) -> list[Sku]:
        return []

    deps = Deps(clock=lambda: T0, fetch_skus=catalogue)

    async def replicate(uow: UnitOfWork) -> None:
        await handlers.replicate_sku(commands.ReplicateSku(sku), uow, deps)

    assert await deliver(unit_of_work(sessions), "message-1", replicate)
    async with unit_of_work(sessions) as uow:
        assert (await uow.skus.get_many([sku.id]))[sku.id].name == "Joined"
    assert not await deliver(unit_of_work(sessions), "message-1", replicate)


async def test_a_handler_failing_inside_the_delivery_leaves_neither_its_work_nor_the_inbox_mark(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def catalogue_down(ids: list[str]) -> list[Sku]:
        raise SkuCatalogueUnavailable("timeout")

    async def create(uow: UnitOfWork) -> None:
        cmd = commands.CreateOrder("D-1", line_items=(commands.NewLineItem("sku-unseen", 1),))
        await handlers.create_order(cmd, uow, Deps(clock=lambda: T0, fetch_skus=catalogue_down))

    with pytest.raises(SkuCatalogueUnavailable):
        await deliver(unit_of_work(sessions), "message-2", create)

    async def nothing(uow: UnitOfWork) -> None:
        return None

    assert await deliver(unit_of_work(sessions), "message-2", nothing), "the failed delivery's mark was kept"
