"""In-memory repositories and unit of work: the service layer's tests run on these, without I/O."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from orders.domain.model import Forecast, Order, Sku
from servicekit.testing import FakeUnitOfWork


class InMemoryOrderRepository:
    def __init__(self) -> None:
        self.rows: dict[str, Order] = {}

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        found = self.rows.get(order_id)
        return copy.deepcopy(found) if found is not None else None

    async def get_many(self, order_ids: Sequence[str], *, for_update: bool = False) -> list[Order]:
        return [copy.deepcopy(self.rows[i]) for i in order_ids if i in self.rows]

    async def add(self, order: Order) -> None:
        self.rows[order.id] = copy.deepcopy(order)

    async def save(self, order: Order) -> None:
        held = self.rows.get(order.id)
        self.rows[order.id] = copy.deepcopy(order)
        self.rows[order.id].forecast = held.forecast if held is not None else None

    async def save_forecast(self, order_id: str, forecast: Forecast) -> bool:
        held = self.rows.get(order_id)
        if held is None or (held.forecast is not None and held.forecast.generated_at >= forecast.generated_at):
            return False
        self.rows[order_id] = dataclasses.replace(held, forecast=forecast)
        return True


class InMemorySkuRepository:
    def __init__(self) -> None:
        self.rows: dict[str, Sku] = {}

    async def get_many(self, ids: Iterable[str]) -> dict[str, Sku]:
        return {i: self.rows[i] for i in set(ids) if i in self.rows}

    async def upsert(self, sku: Sku, updated_at: datetime) -> bool:
        held = self.rows.get(sku.id)
        if held is not None and held.revision >= sku.revision:
            return False
        self.rows[sku.id] = sku
        return True


@dataclass
class OrdersState:
    orders: dict[str, Order] = field(default_factory=dict)
    skus: dict[str, Sku] = field(default_factory=dict)


class InMemoryUnitOfWork(FakeUnitOfWork[OrdersState]):
    """The orders service's repositories on servicekit's fake unit of work: only committed work is kept."""

    def __init__(self) -> None:
        super().__init__(OrdersState(), source="/services/orders")

    def _open(self) -> None:
        self.orders = InMemoryOrderRepository()
        self.orders.rows = self.work.orders
        self.skus = InMemorySkuRepository()
        self.skus.rows = self.work.skus

    @property
    def committed_orders(self) -> InMemoryOrderRepository:
        committed = InMemoryOrderRepository()
        committed.rows = self.state.orders
        return committed

    @property
    def committed_skus(self) -> InMemorySkuRepository:
        committed = InMemorySkuRepository()
        committed.rows = self.state.skus
        return committed
