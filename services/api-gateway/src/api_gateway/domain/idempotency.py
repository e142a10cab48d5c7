"""Idempotency-Key rules: the same key and request replays the first answer; anything else is refused.

A record is keyed by (principal, key) and remembers the request's fingerprint (method, path, body
hash). While the first request is in flight the record has no response yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

MAX_KEY_LENGTH = 255
REPLAYED_HEADERS = ("content-type", "location", "etag", "content-disposition", "last-modified")


@dataclass(frozen=True)
class Fingerprint:
    method: str
    path: str
    body_sha256: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class IdempotencyRecord:
    principal: str
    key: str
    fingerprint: Fingerprint
    created_at: datetime
    response: StoredResponse | None = None
    attempts: int = field(default=1)


class Verdict(Enum):
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_FLIGHT = "in_flight"
    ABANDONED = "abandoned"


def judge(record: IdempotencyRecord, fingerprint: Fingerprint, now: datetime, stale_after: timedelta) -> Verdict:
    """What to do with a request whose key is already recorded."""
    if record.fingerprint != fingerprint:
        return Verdict.MISMATCH
    if record.response is not None:
        return Verdict.REPLAY
    if now - record.created_at > stale_after:
        return Verdict.ABANDONED
    return Verdict.IN_FLIGHT


def is_storable(status: int) -> bool:
    """A 5xx may be transient, so the client's retry must reach the service again."""
    return 200 <= status < 500


def keep_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() in REPLAYED_HEADERS}


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()


