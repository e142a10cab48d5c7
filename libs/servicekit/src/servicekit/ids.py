"""Injected sources of identity and time, so the domain and tests stay deterministic."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

IdFactory = Callable[[], str]
Clock = Callable[[], datetime]

_VARIANT_AND_VERSION = (0x8000 << 48) | (7 << 76)
_last_ms = 0


def new_id() -> str:
    """A UUIDv7: time-ordered, so ids sort by creation and index well. Built as text directly (uuid6's
    `str(uuid7())` goes through a UUID object: a 20,000-job order spent a fifth of a second on it). Like
    uuid6, a millisecond already used moves the timestamp on by one, so ids of one process strictly ascend."""
    global _last_ms
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        ms = _last_ms + 1
    _last_ms = ms
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | (secrets.randbits(76) & ~(0xC000 << 48)) | _VARIANT_AND_VERSION
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def utc_now() -> datetime:
    return datetime.now(UTC)
