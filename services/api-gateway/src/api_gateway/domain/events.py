"""Live change events: which contract messages become which SSE events, and the resumable position.

A position is one stream sequence per source stream; an SSE `id` is the position right after that
event, so resuming from it means "everything with a higher sequence, per stream".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

EVENT_NAMES: dict[str, str] = {
    "orders.v1.order.changed": "order.updated",
    "orders.v1.order.completed": "order.completed",
    "queue.v1.job.changed": "job.updated",
    "printers.v1.printer.changed": "printer.updated",
}

SOURCE_STREAMS: tuple[str, ...] = ("ORDERS", "QUEUE", "PRINTERS")
_SHORT = {"ORDERS": "o", "QUEUE": "q", "PRINTERS": "p"}
_LONG = {v: k for k, v in _SHORT.items()}

Position = dict[str, int]


@dataclass(frozen=True)
class LoggedMessage:
    """One message read from a stream."""

    stream: str
    seq: int
    subject: str
    data: dict[str, Any] | None


@dataclass(frozen=True)
class LiveEvent:
    id: str
    event: str
    data: dict[str, Any]

    def frame(self) -> str:
        return f"id: {self.id}\nevent: {self.event}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n"


def encode_position(position: Position) -> str:
    return ".".join(f"{_SHORT[s]}{position.get(s, 0)}" for s in SOURCE_STREAMS)


_EVENT_ID = re.compile(r"[A-Za-z][0-9]{1,19}(\.[A-Za-z][0-9]{1,19})*")
_MAX_SEQ = 2**63 - 1


def is_event_id(text: str) -> bool:
    """Whether ``text`` has the shape of an event id (ASCII letter and digits per stream, sequences in
    range). One of another gateway version (other streams) still has it; made-up text does not."""
    text = text.strip()
    return _EVENT_ID.fullmatch(text) is not None and all(int(p[1:]) <= _MAX_SEQ for p in text.split("."))


def decode_position(text: str) -> Position | None:
    """None for anything that is not a position this gateway wrote (the client then starts live)."""
    if not is_event_id(text):
        return None
    position: Position = {}
    for part in text.strip().split("."):
        stream = _LONG.get(part[:1])
        if stream is None:
            return None
        position[stream] = int(part[1:])
    if set(position) != set(SOURCE_STREAMS):
        return None
    return position


def to_event(message: LoggedMessage, position_after: Position) -> LiveEvent | None:
    name = EVENT_NAMES.get(message.subject)
    if name is None or message.data is None:
        return None
    return LiveEvent(id=encode_position(position_after), event=name, data=public_shape(name, message.data))


def public_shape(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """Events speak API.md's field names where a contract's differ (a job's `copy`)."""
    if event == "job.updated" and "copy_number" in data and "copy" not in data:
        return {**data, "copy": data["copy_number"]}
    return data


def heartbeat() -> str:
    return ": heartbeat\n\n"
