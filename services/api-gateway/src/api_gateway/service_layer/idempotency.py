"""Claiming an Idempotency-Key before forwarding, and recording the answer after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

from api_gateway.domain.errors import KeyReused, StillInFlight
from api_gateway.domain.idempotency import (
    Fingerprint,
    IdempotencyRecord,
    StoredResponse,
    Verdict,
    is_storable,
    judge,
)
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from servicekit.ids import Clock

UowFactory = Callable[[], GatewayUnitOfWork]


class IdempotencyKeys:
    def __init__(
        self,
        uow_factory: UowFactory,
        clock: Clock,
        *,
        wait_seconds: float,
        stale_after: timedelta,
        ttl: timedelta,
        poll_seconds: float = 0.1,
    ) -> None:
        self.uow_factory, self.clock = uow_factory, clock
        self.wait_seconds, self.stale_after, self.ttl = wait_seconds, stale_after, ttl
        self.poll_seconds = poll_seconds

    async def begin(self, principal: str, key: str, fingerprint: Fingerprint) -> StoredResponse | None:
        """None: this request owns the key and must be forwarded. Otherwise the first request's answer.

        A duplicate arriving while the first is in flight waits for it (up to `wait_seconds`), then
        gets `StillInFlight`; a key whose owner vanished (gateway crash) is taken over when stale.
        """
        deadline = time.monotonic() + self.wait_seconds
        while True:
            async with self.uow_factory() as uow:
                if await uow.idempotency.claim(IdempotencyRecord(principal, key, fingerprint, self.clock())):
                    await uow.commit()
                    return None
                existing = await uow.idempotency.get(principal, key)
                if existing is not None:
                    verdict = judge(existing, fingerprint, self.clock(), self.stale_after)
                    if verdict is Verdict.MISMATCH:
                        raise KeyReused(key)
                    if verdict is Verdict.REPLAY:
                        assert existing.response is not None
                        return existing.response
                    if verdict is Verdict.ABANDONED and await uow.idempotency.take_over(existing, self.clock()):
                        await uow.commit()
                        return None
            if time.monotonic() >= deadline:
                raise StillInFlight(key)
            await asyncio.sleep(self.poll_seconds)

    async def finish(self, principal: str, key: str, response: StoredResponse | None) -> None:
        """Remember a final answer; forget the key after a 5xx or a failed forward so a retry runs again."""
        async with self.uow_factory() as uow:
            if response is not None and is_storable(response.status):
                await uow.idempotency.complete(principal, key, response, self.clock())
            else:
                await uow.idempotency.release(principal, key)
            await uow.commit()

    async def prune(self) -> int:
        async with self.uow_factory() as uow:
            removed = await uow.idempotency.prune(self.clock() - self.ttl)
            await uow.commit()
        return removed
