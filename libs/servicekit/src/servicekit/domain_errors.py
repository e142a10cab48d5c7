"""The base of every error a client can act on: a service's `domain/errors.py` declares each error's HTTP
answer (`status`, `title`) beside the error itself, and `servicekit.problems` answers all of them the same way.

Pure Python (no FastAPI), so domains may import it.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An error with its problem-details shape: `detail` (the message, by default), `errors` naming the offending
    fields and `extra` members of the problem body; `headers` go on the response (e.g. Retry-After)."""

    status: int = 400
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}


def field_errors(field: str, message: str) -> list[dict[str, str]]:
    """The `errors` member for one offending field: `[{"field": ..., "message": ...}]`."""
    return [{"field": field, "message": message}]
