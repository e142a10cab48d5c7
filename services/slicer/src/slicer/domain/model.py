"""The Slice aggregate: one row per cache key, the unit of "never slice the same thing twice".

A slice is `requested` (known, nobody working on it), `slicing` (claimed by one worker until its lease
expires), `completed` (a file exists) or `failed` (the tools refused these inputs; the same inputs fail
the same way, so the failure is cached too). A claim is fenced by its owner token (one per attempt): only the
worker that holds the live claim may renew it or give it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

SliceState = Literal["requested", "slicing", "completed", "failed"]
FailureStage = Literal["fetch", "render", "slice", "package", "profile"]


class ClaimLost(Exception):
    """The worker's claim expired or was taken over: it may not renew it any more."""


class SliceAlreadyDone(Exception):
    """An outcome arrived for a slice that already has one."""


@dataclass(frozen=True)
class SliceInputs:
    """What was asked for, kept for operators reading `GET /slices`."""

    source_sha256: str
    source_kind: str
    source_filename: str
    parameters: dict[str, Any]
    printer_model: str
    fabmatic: bool
    material_type: str
    material_color: str | None


@dataclass(frozen=True)
class SliceResult:
    """The sliced file in `sliced-files` (keyed by its sha256) and what the slicer says it takes."""

    sha256: str
    filename: str
    kind: str
    size_bytes: int
    profile: str
    print_minutes: float
    grams: float
    layers: int | None = None
    filament_mm: float | None = None


@dataclass(frozen=True)
class SliceFailure:
    stage: FailureStage
    error: str


@dataclass(frozen=True)
class Answer:
    """What a request for this slice is answered with right now."""

    result: SliceResult | None = None
    failure: SliceFailure | None = None


@dataclass(frozen=True)
class Wait:
    """Another worker holds a live claim until `until`: look again later."""

    owner: str
    until: datetime


@dataclass(frozen=True)
class Claim:
    """This worker now holds the slice; `attempt` counts claims granted on it (1 unless taken over)."""

    owner: str
    attempt: int


Decision = Answer | Wait | Claim


@dataclass
class Slice:
    key: str
    inputs: SliceInputs
    state: SliceState = "requested"
    claim_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    result: SliceResult | None = None
    failure: SliceFailure | None = None
    last_error: str | None = None
    """The last infrastructure error that made a worker give its claim back (object store down...)."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    slice_seconds: float | None = None
    events: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.state in ("completed", "failed")

    def claimed_by(self, owner: str, now: datetime) -> bool:
        return (
            self.state == "slicing"
            and self.claim_owner == owner
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )

    def decide(self, owner: str, now: datetime, lease: timedelta) -> Decision:
        """Answer from the cache, wait for a live claim, or take the slice (also over an expired claim)."""
        if self.state == "completed":
            return Answer(result=self.result)
        if self.state == "failed":
            return Answer(failure=self.failure)
        if (
            self.state == "slicing"
            and self.claim_owner is not None
            and self.claim_owner != owner
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        ):
            return Wait(self.claim_owner, self.lease_expires_at)
        if self.state == "slicing" and self.claim_owner != owner:
            self.events.append(f"claim of {self.claim_owner} expired; taken over by {owner}")
        self.state = "slicing"
        self.claim_owner = owner
        self.lease_expires_at = now + lease
        self.attempts += 1
        self.started_at = now
        self.updated_at = now
        return Claim(owner, self.attempts)

    def renew(self, owner: str, now: datetime, lease: timedelta) -> None:
        self._require_claim(owner, now)
        self.lease_expires_at = now + lease
        self.updated_at = now

    def complete(self, result: SliceResult, now: datetime) -> None:
        """Recorded by whoever finished first: a worker whose lease ran out still made a good file, so a
        late outcome is kept unless the slice is already done (then the caller answers from it)."""
        self._require_open()
        self.state, self.result, self.failure = "completed", result, None
        self._finish(now)

    def fail(self, failure: SliceFailure, now: datetime) -> None:
        self._require_open()
        self.state, self.failure, self.result = "failed", failure, None
        self._finish(now)

    def release(self, owner: str, error: str, now: datetime) -> None:
        """Give the claim back without an outcome (infrastructure trouble): the next delivery retries."""
        if self.state != "slicing" or self.claim_owner != owner:
            return
        self.state = "requested"
        self.claim_owner = None
        self.lease_expires_at = None
        self.last_error = error
        self.updated_at = now

    def _finish(self, now: datetime) -> None:
        if self.started_at is not None:
            self.slice_seconds = max((now - self.started_at).total_seconds(), 0.0)
        self.claim_owner = None
        self.lease_expires_at = None
        self.finished_at = now
        self.updated_at = now

    def _require_open(self) -> None:
        if self.done:
            raise SliceAlreadyDone(f"slice {self.key} is already {self.state}")

    def _require_claim(self, owner: str, now: datetime) -> None:
        if self.state != "slicing" or self.claim_owner != owner:
            raise ClaimLost(f"{owner} no longer holds slice {self.key} (state {self.state}, owner {self.claim_owner})")
        if self.lease_expires_at is None or self.lease_expires_at <= now:
            raise ClaimLost(f"the claim of {owner} on slice {self.key} expired at {self.lease_expires_at}")


def new_slice(key: str, inputs: SliceInputs, now: datetime) -> Slice:
    return Slice(key=key, inputs=inputs, created_at=now, updated_at=now)
