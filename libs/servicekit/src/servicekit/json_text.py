"""JSON text for messages rendered as strings instead of pydantic models (the outbox's envelopes and the data a
bulk writer renders inside them): one definition, so an envelope and its data encode a value the same way,
as pydantic's `model_dump_json` would (non-ASCII kept, no spaces, times in pydantic's format)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

dumps: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""Any JSON-able value as compact JSON text."""

quote: Callable[[str], str] = json.encoder.encode_basestring
"""A string as a JSON string literal: quicker than `dumps` where the value is known to be a `str`."""

time_json: Callable[[datetime], bytes] = TypeAdapter(datetime).dump_json
"""A moment as pydantic writes it, quoted (bytes)."""


def time_text(value: datetime | None) -> str:
    return "null" if value is None else time_json(value).decode()


def float_text(value: float) -> str:
    """As pydantic writes a float: not-a-number and infinities as null (`json` would write invalid JSON)."""
    return dumps(value) if math.isfinite(value) else "null"
