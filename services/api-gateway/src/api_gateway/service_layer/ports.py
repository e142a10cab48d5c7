"""What the gateway's use cases need from the outside, besides the database: password hashing, the
first-admin file, the dead-letter archive (JetStream) and the webhook sender (HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from api_gateway.domain.dead_letters import DeadLetter, Replay


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...


class CredentialsFile(Protocol):
    """Where the first admin's secrets are written once for the operator to pick up."""

    def write(self, username: str, password: str, api_token: str) -> str: ...
    def discard(self) -> None: ...
    def password_changed(self, username: str) -> bool: ...


class DeadLetterArchive(Protocol):
    async def entries(self) -> list[DeadLetter]:
        """Every stored dead letter, oldest first."""
        ...

    async def republish(self, replay: Replay) -> bool:
        """Publish the message again to its subject; False when it was already replayed (a duplicate)."""
        ...

    async def forget(self, seqs: Sequence[int]) -> None:
        """Remove stored dead letters (already gone ones are fine)."""
        ...


class Sender(Protocol):
    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        """POSTs once: (status code, None) when the receiver answered, (None, reason) when it did not."""
        ...
