"""Argon2id password hashing off the event loop, a few at a time.

Each hash costs tens of milliseconds and 64 MiB on purpose. Unbounded, a burst of logins would
exhaust the process's memory; so at most `concurrency` hashes run at once, at most `queue` more
wait for a slot, and anything beyond that is refused at once (503) instead of piling up.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from api_gateway.domain.errors import HashingBusy


class Argon2Passwords:
    def __init__(self, hasher: PasswordHasher | None = None, *, concurrency: int = 2, queue: int = 32) -> None:
        self.hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._capacity = max(1, concurrency) + max(0, queue)
        self._admitted = 0

    async def hash(self, password: str) -> str:
        async with self._slot():
            return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slot():
            try:
                return await asyncio.to_thread(self.hasher.verify, password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def _slot(self) -> _Slot:
        if self._admitted >= self._capacity:
            raise HashingBusy("every password-hashing slot is busy; try again shortly")
        return _Slot(self)


class _Slot:
    def __init__(self, owner: Argon2Passwords) -> None:
        self.owner = owner

    async def __aenter__(self) -> None:
        self.owner._admitted += 1
        try:
            await self.owner._slots.acquire()
        except BaseException:
            self.owner._admitted -= 1
            raise

    async def __aexit__(self, *_: object) -> None:
        self.owner._slots.release()
        self.owner._admitted -= 1
