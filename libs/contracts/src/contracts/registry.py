"""Every v1 message, its subject and its owner's stream: the one list that streams, schema snapshots
and NATS permissions are derived from."""

from __future__ import annotations

from contracts.envelope import ContractMessage
from contracts.orders.v1 import OrderCancelled, OrderChanged, OrderCompleted, OrderPrintRequested
from contracts.printers.v1 import PrinterChanged, PrintUpdated
from contracts.queue.v1 import (
    JobChanged,
    OrderForecastChanged,
    OrderJobsSummarized,
    SlicePart,
    StartPrint,
    StopPrint,
)
from contracts.skus.v1 import PartChanged, SkuChanged
from contracts.slicer.v1 import SliceCompleted, SliceFailed

MESSAGES: tuple[type[ContractMessage], ...] = (
    SkuChanged,
    PartChanged,
    OrderChanged,
    OrderCompleted,
    OrderPrintRequested,
    OrderCancelled,
    JobChanged,
    OrderJobsSummarized,
    OrderForecastChanged,
    StartPrint,
    StopPrint,
    SlicePart,
    PrinterChanged,
    PrintUpdated,
    SliceCompleted,
    SliceFailed,
)

STREAMS: dict[str, str] = {
    "skus": "SKUS",
    "orders": "ORDERS",
    "queue": "QUEUE",
    "printers": "PRINTERS",
    "slicer": "SLICER",
}
"""Owner prefix → its JetStream stream. The printer-gateway service owns the `printers` prefix."""

DEAD_LETTER_STREAM = "DEADLETTER"

SERVICE_PREFIXES: dict[str, str | None] = {
    "skus": "skus",
    "orders": "orders",
    "queue": "queue",
    "printer-gateway": "printers",
    "slicer": "slicer",
    "api-gateway": None,
}
"""Each deployable service and the one subject prefix it may publish events under (None: it publishes none)."""


def stream_subjects(owner: str) -> list[str]:
    """Subjects an owner's stream captures: exactly its declared messages, so request/reply
    subjects (`rpc.*`) never land in a stream."""
    return sorted({m.SUBJECT for m in MESSAGES if m.subject_owner() == owner})


def message_for_subject(subject: str) -> type[ContractMessage]:
    for m in MESSAGES:
        if m.SUBJECT == subject:
            return m
    raise KeyError(subject)
