"""The skus unit of work: one transaction over parts, SKUs, order usage, outbox and inbox."""

from __future__ import annotations

from servicekit.unit_of_work import SqlUnitOfWork
from skus.adapters.repository import (
    OrderUsageRepository,
    PartRepository,
    SkuRepository,
    SqlOrderUsageRepository,
    SqlPartRepository,
    SqlSkuRepository,
)


class UnitOfWork(SqlUnitOfWork):
    parts: PartRepository
    skus: SkuRepository
    orders: OrderUsageRepository

    def _open(self) -> None:
        self.parts = SqlPartRepository(self.session)
        self.skus = SqlSkuRepository(self.session)
        self.orders = SqlOrderUsageRepository(self.session)
