"""Cursor pagination per API.md: `?limit=` (default 50, max 500), `?cursor=`, `{items, next_cursor}`."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from servicekit.problems import Problem
from servicekit.storable_text import unstorable_fields

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size (max 500).")]
Cursor = Annotated[str | None, Query(description="Opaque cursor from a previous page's next_cursor.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def bad_cursor(why: str = "not a cursor returned by this API") -> Problem:
    """A 400 about the ``cursor`` parameter: a client that made one up, or kept one across a change."""
    return Problem.field("cursor", why)


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position a cursor holds; 400 when it is not one this API wrote (forged text included)."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_cursor() from exc
    if not isinstance(value, dict) or next(unstorable_fields(value), None) is not None:
        raise bad_cursor()
    return value


def cursor_values(cursor: str | None, *keys: str) -> tuple[str, ...] | None:
    """The text values of ``keys`` in a cursor (None without one); 400 when one is missing or not text."""
    position = decode_cursor(cursor)
    if position is None:
        return None
    values = tuple(position.get(key) for key in keys)
    if not all(isinstance(v, str) for v in values):
        raise bad_cursor()
    return tuple(str(v) for v in values)
