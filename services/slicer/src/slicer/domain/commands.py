"""What the slicer is asked to do: one command per write use case, with the inputs it needs.

A slice request is answered in steps, each its own transaction (the pipeline runs between them,
outside any), so each step is a command; the request travels with the ones that answer it, because its
envelope is what the inbox marks and what the answer is caused by.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.envelope import Envelope
from contracts.queue.v1 import SlicePart
from slicer.domain.model import SliceFailure, SliceResult


@dataclass(frozen=True)
class SliceRequest:
    """A `SlicePart` as it arrived: the envelope's id is what the inbox and the answer's id derive from."""

    message: SlicePart
    envelope: Envelope

    @property
    def id(self) -> str:
        return self.envelope.id


@dataclass(frozen=True)
class BeginSlice:
    """Answer a request from the cache, learn whose live claim to wait for, or claim the slice."""

    request: SliceRequest


@dataclass(frozen=True)
class RenewClaim:
    """Keep a claim alive while the pipeline runs."""

    key: str
    owner: str


@dataclass(frozen=True)
class RecordOutcome:
    """Store what the pipeline made (or the tools' refusal) and answer the request."""

    request: SliceRequest
    key: str
    outcome: SliceResult | SliceFailure


@dataclass(frozen=True)
class AnswerUncached:
    """Answer failed but cache nothing: the cause is not the inputs and may go away."""

    request: SliceRequest
    key: str
    owner: str
    failure: SliceFailure


@dataclass(frozen=True)
class GiveBack:
    """Release a claim after infrastructure trouble, so a redelivery can retry at once."""

    key: str
    owner: str
    error: str
