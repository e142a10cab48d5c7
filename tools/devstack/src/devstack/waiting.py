"""Waiting for a condition with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T]], timeout: float, what: str, *, interval: float = ...
) -> T: ...


@overload
async def wait_until(predicate: Callable[[], T], timeout: float, what: str, *, interval: float = ...) -> T: ...


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str, *, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy and return that value.

    The predicate may be sync or async; it can raise to abort the wait early (for example when
    the process being waited for has died). Raises ``TimeoutError`` naming ``what``.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(min(interval, remaining))
