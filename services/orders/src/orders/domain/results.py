"""What the write use cases answer, as domain values: the entrypoints shape them into responses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orders.domain.model import Order, Sku


@dataclass(frozen=True)
class OrderWithSkus:
    """An order and the replica's SKUs it names: its job counts, breakdown and materials are computed from both."""

    order: Order
    skus: Mapping[str, Sku]


@dataclass(frozen=True)
class PrintRequested:
    order_id: str
    print_revision: int


@dataclass(frozen=True)
class CloseRefused:
    order_id: str
    reason: str


@dataclass(frozen=True)
class OrdersClosed:
    """A bulk close: the orders closed (or closed already) and each one refused with its reason, in the
    order they were asked for."""

    closed: tuple[str, ...]
    refused: tuple[CloseRefused, ...]
