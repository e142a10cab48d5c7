"""In-memory stand-ins for the database, the bucket and OpenSCAD: the service layer and the HTTP edge
run unchanged on top of them."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import anyio
from fastapi.testclient import TestClient

from contracts.envelope import Envelope
from servicekit.ids import Clock, IdFactory
from servicekit.testing import FakeUnitOfWork as BaseFakeUnitOfWork
from skus.adapters.file_inspection import inspect_local_file
from skus.adapters.file_store import LocalFileStore
from skus.adapters.openscad import RenderResult
from skus.domain.errors import DuplicateSku
from skus.domain.model import OPEN_ORDER_STATUSES, Part, Sku
from skus.service_layer.handlers import Deps
from skus.service_layer.unit_of_work import UnitOfWork


@dataclass
class KnownOrder:
    order_number: str
    status: str
    revision: int
    sku_ids: list[str]


@dataclass
class State:
    parts: dict[str, Part] = field(default_factory=dict)
    skus: dict[str, Sku] = field(default_factory=dict)
    orders: dict[str, KnownOrder] = field(default_factory=dict)
    inbox: set[tuple[str, str]] = field(default_factory=set)


class FakePartRepository:
    def __init__(self, state: State) -> None:
        self.state = state

    async def get(self, part_id: str, *, for_update: bool = False) -> Part | None:
        return copy.deepcopy(self.state.parts.get(part_id))

    async def get_many(self, ids: Iterable[str], *, for_share: bool = False) -> dict[str, Part]:
        return {i: copy.deepcopy(self.state.parts[i]) for i in set(ids) if i in self.state.parts}

    async def add(self, part: Part) -> None:
        self.state.parts[part.id] = copy.deepcopy(part)

    async def update(self, part: Part) -> None:
        self.state.parts[part.id] = copy.deepcopy(part)

    async def delete(self, part_id: str) -> None:
        self.state.parts.pop(part_id, None)

    async def search(self, q: str | None, limit: int, after: str | None) -> list[Part]:
        found = sorted(self.state.parts.values(), key=lambda p: p.id)
        found = [p for p in found if (not q or q.lower() in p.name.lower()) and (after is None or p.id > after)]
        return copy.deepcopy(found[:limit])


class FakeSkuRepository:
    def __init__(self, state: State) -> None:
        self.state = state

    async def get(self, sku_id: str, *, for_update: bool = False) -> Sku | None:
        return copy.deepcopy(self.state.skus.get(sku_id))

    async def get_many(self, ids: Iterable[str]) -> list[Sku]:
        return [copy.deepcopy(self.state.skus[i]) for i in set(ids) if i in self.state.skus]

    async def by_code(self, code: str) -> Sku | None:
        return next((copy.deepcopy(s) for s in self.state.skus.values() if s.code.lower() == code.lower()), None)

    def _check_unique(self, sku: Sku) -> None:
        for other in self.state.skus.values():
            if other.id != sku.id and other.code.lower() == sku.code.lower():
                raise DuplicateSku(sku.code, other.id, other.code)

    async def add(self, sku: Sku) -> None:
        self._check_unique(sku)
        self.state.skus[sku.id] = copy.deepcopy(sku)

    async def update(self, sku: Sku) -> None:
        self._check_unique(sku)
        self.state.skus[sku.id] = copy.deepcopy(sku)

    async def delete(self, sku_id: str) -> None:
        self.state.skus.pop(sku_id, None)

    async def search(self, q: str | None, limit: int, after: tuple[str, str] | None) -> list[Sku]:
        found = sorted(self.state.skus.values(), key=lambda s: (s.code.lower(), s.id))
        needle = (q or "").lower()
        found = [
            s
            for s in found
            if (not needle or needle in s.code.lower() or needle in s.name.lower())
            and (after is None or (s.code.lower(), s.id) > after)
        ]
        return copy.deepcopy(found[:limit])

    async def using_part(self, part_id: str) -> list[Sku]:
        found = [s for s in self.state.skus.values() if any(line.part_id == part_id for line in s.lines)]
        return copy.deepcopy(sorted(found, key=lambda s: s.code.lower()))


class FakeOrderUsageRepository:
    def __init__(self, state: State) -> None:
        self.state = state

    async def apply(self, order_id: str, order_number: str, status: str, revision: int, sku_ids: list[str]) -> bool:
        known = self.state.orders.get(order_id)
        if known is not None and known.revision >= revision:
            return False
        self.state.orders[order_id] = KnownOrder(order_number, status, revision, list(sku_ids))
        return True

    async def open_orders_using(self, sku_id: str) -> list[tuple[str, str]]:
        return sorted(
            ((i, o.order_number) for i, o in self.state.orders.items()
             if o.status in OPEN_ORDER_STATUSES and sku_id in o.sku_ids),
            key=lambda pair: pair[1],
        )


class FakeUnitOfWork(BaseFakeUnitOfWork[State]):
    """servicekit's fake unit of work over parts, SKUs and order usage: commits keep the work, the emitted
    envelopes and the inbox marks (shared through `state`); anything else rolls back."""

    def __init__(self, state: State, published: list[Envelope]) -> None:
        super().__init__(state, source="/services/skus", published=published, claimed=state.inbox)

    def _open(self) -> None:
        self.parts = FakePartRepository(self.work)
        self.skus = FakeSkuRepository(self.work)
        self.orders = FakeOrderUsageRepository(self.work)

    def _keep(self, work: State) -> None:
        self.state.parts, self.state.skus, self.state.orders = work.parts, work.skus, work.orders


class FakeBucket:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put(self, sha256: str, source: Path) -> None:
        self.objects[sha256] = await anyio.Path(source).read_bytes()


class FakeRender:
    """OpenSCAD's verdict, chosen by the test."""

    def __init__(self, result: RenderResult | None = None) -> None:
        self.result = result or RenderResult(rendered=False, ok=True, message="OpenSCAD is not installed")
        self.calls: list[Path] = []

    async def __call__(self, path: Path) -> RenderResult:
        self.calls.append(path)
        return self.result


START = datetime(2026, 1, 1, tzinfo=UTC)


def ascending_ids() -> IdFactory:
    """Ascending ids, so ordering by id is creation order."""
    counter = itertools.count(1)

    def ids() -> str:
        return f"00000000-0000-7000-8000-{next(counter):012d}"

    return ids


def ticking_clock(start: datetime = START) -> Clock:
    """A clock that ticks a second per call, from `start`."""
    ticks = itertools.count()

    def clock() -> datetime:
        return start + timedelta(seconds=next(ticks))

    return clock


def fake_deps(store: LocalFileStore, bucket: FakeBucket, render: FakeRender) -> Deps:
    """The real readers over a local store in the test's folder; the bucket and OpenSCAD are fakes."""
    return Deps(
        clock=ticking_clock(),
        ids=ascending_ids(),
        store=store,
        bucket=bucket,
        inspect=inspect_local_file,
        render=render,
    )


def envelope_data(envelopes: list[Envelope], subject: str) -> list[dict[str, Any]]:
    return [e.data or {} for e in envelopes if e.type == subject]


UPLOAD_LIMIT = 256 * 1024


@dataclass
class Service:
    """One in-memory skus service: its HTTP client and everything behind it, for assertions."""

    client: TestClient
    state: State
    published: list[Envelope]
    store: LocalFileStore
    bucket: FakeBucket
    render: FakeRender
    deps: Deps

    def uow(self) -> UnitOfWork:
        return cast(UnitOfWork, FakeUnitOfWork(self.state, self.published))

    def subjects(self) -> list[str]:
        return [e.type for e in self.published]
