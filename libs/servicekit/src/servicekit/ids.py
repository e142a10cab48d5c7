"""Injected sources of identity and time, so the domain and tests stay deterministic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import uuid6

IdFactory = Callable[[], str]
Clock = Callable[[], datetime]


def new_id() -> str:
    """A UUIDv7: time-ordered, so ids sort by creation and index well."""
    return str(uuid6.uuid7())


def utc_now() -> datetime:
    return datetime.now(UTC)
