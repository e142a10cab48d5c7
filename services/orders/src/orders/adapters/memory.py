"""In-memory repositories and unit of work: the service layer's tests run on these, without I/O."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from contracts.envelope import ContractMessage, Envelope
from orders.domain.model import Forecast, Order, Sku


class InMemoryOrderRepository:
    def __init__(self) -> None:
        self.rows: dict[str, Order] = {}

    async def get(self, order_id: str, *, lock: bool = True) -> Order | None:
        found = self.rows.get(order_id)
        return copy.deepcopy(found) if found is not None else None

    async def get_many(self, order_ids: Sequence[str], *, lock: bool = True) -> list[Order]:
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


class InMemoryUnitOfWork:
    """Commits by swapping in the changed rows; `messages` holds everything emitted by committed work."""

    def __init__(self) -> None:
        self.committed_orders = InMemoryOrderRepository()
        self.committed_skus = InMemorySkuRepository()
        self.orders = InMemoryOrderRepository()
        self.skus = InMemorySkuRepository()
        self.messages: list[ContractMessage] = []
        self._pending: list[ContractMessage] = []
        self.commits = 0

    async def __aenter__(self) -> Self:
        self.orders.rows = dict(self.committed_orders.rows)
        self.skus.rows = dict(self.committed_skus.rows)
        self._pending = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pending = []

    def emit(self, message: ContractMessage, *, subject_id: str | None = None) -> Envelope:
        self._pending.append(message)
        return Envelope(id=str(len(self.messages) + len(self._pending)), type=message.SUBJECT, source="/memory")

    async def commit(self) -> None:
        self.committed_orders.rows = dict(self.orders.rows)
        self.committed_skus.rows = dict(self.skus.rows)
        self.messages.extend(self._pending)
        self._pending = []
        self.commits += 1
