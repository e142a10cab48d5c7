"""Seeing and replaying dead letters: the use cases behind `/api/v1/dead-letters`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from api_gateway.domain.dead_letters import DeadLetter, DeadLetterSummary, Replay, plan_replay, summarize

log = logging.getLogger(__name__)


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


class DeadLetters:
    def __init__(self, archive: DeadLetterArchive) -> None:
        self.archive = archive

    async def list(self) -> list[DeadLetterSummary]:
        return summarize(await self.archive.entries())

    async def replay(self, message_id: str, by: str) -> Replay:
        """Republish first, forget after: a crash in between leaves the dead letter listed, and replaying
        it again is a JetStream duplicate (same replay id) or an inbox skip, never a second effect."""
        replay = plan_replay(await self.archive.entries(), message_id)
        fresh = await self.archive.republish(replay)
        await self.archive.forget(replay.stored_seqs)
        log.info(
            "%s replayed %s to %s for %s%s",
            by,
            message_id,
            replay.subject,
            ", ".join(replay.consumers),
            "" if fresh else " (already replayed: JetStream kept the first)",
        )
        return replay
