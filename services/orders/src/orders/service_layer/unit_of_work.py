"""The orders unit of work, and the interface handlers rely on (so tests can hand them a fake)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from contracts.envelope import ContractMessage, Envelope
from orders.adapters.repository import SqlOrderRepository, SqlSkuRepository
from orders.domain.model import Forecast, Order, Sku
from servicekit.unit_of_work import SqlUnitOfWork


class OrderRepository(Protocol):
    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None: ...
    async def get_many(self, order_ids: Sequence[str], *, for_update: bool = False) -> list[Order]: ...
    async def add(self, order: Order) -> None: ...
    async def save(self, order: Order) -> None: ...
    async def save_forecast(self, order_id: str, forecast: Forecast) -> bool: ...


class SkuRepository(Protocol):
    async def get_many(self, ids: Iterable[str]) -> dict[str, Sku]: ...
    async def upsert(self, sku: Sku, updated_at: datetime) -> bool: ...


class OrdersUnitOfWork(Protocol):
    @property
    def orders(self) -> OrderRepository: ...
    @property
    def skus(self) -> SkuRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope: ...
    async def commit(self) -> None: ...


class UnitOfWork(SqlUnitOfWork):
    orders: OrderRepository
    skus: SkuRepository

    def _open(self) -> None:
        self.orders = SqlOrderRepository(self.session)
        self.skus = SqlSkuRepository(self.session)
