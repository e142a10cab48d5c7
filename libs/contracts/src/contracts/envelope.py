"""CloudEvents 1.0 structured envelope shared by every message on the bus."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class ContractMessage(BaseModel):
    """Base of every versioned message: frozen, and tolerant of fields added later in the same version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    SUBJECT: ClassVar[str]
    """The NATS subject: `<owner>.v<major>.<aggregate>.<event>` or `<owner>.v<major>.cmd.<verb>`."""

    @classmethod
    def subject_owner(cls) -> str:
        """The prefix (and so the service) that may publish this message."""
        return cls.SUBJECT.split(".", 1)[0]


ContractMessageT = TypeVar("ContractMessageT", bound=ContractMessage)


class Envelope(BaseModel):
    """What travels on the wire. `id` is a UUIDv7 and is always the `Nats-Msg-Id`.

    `dataref` replaces `data` when the payload is too large for one NATS message: the payload then
    lives under that key in the publishing owner's object store bucket
    (`contracts.bus_access.claim_check_bucket(owner)`, e.g. `claim-checks-orders`).
    `traceparent` carries the trace through the outbox row, the relay and redeliveries, so a consumer
    continues the sender's trace.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"] = "1.0"
    id: str
    type: str
    source: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any] | None = None
    dataref: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    """W3C trace context of the span that emitted the message (CloudEvents distributed-tracing extension)."""

    def open(self, message_type: builtins.type[ContractMessageT]) -> ContractMessageT:
        if self.data is None:
            raise ValueError(f"envelope {self.id} carries a claim check, resolve it before opening")
        return message_type.model_validate(self.data)

    def with_data(self, data: dict[str, Any]) -> Self:
        return self.model_copy(update={"data": data, "dataref": None})


MAX_INLINE_PAYLOAD = 512 * 1024
"""NATS refuses payloads over 1 MB by default; anything larger than this travels by claim check."""

DEAD_LETTER_PREFIX = "deadletter"
"""Poison messages end on `deadletter.<service>.<durable consumer name>` (stream DEADLETTER)."""
