"""The JetStream object store `part-files`: printer gateways on other machines fetch part files from
it by sha256, so every part file is put there before the part row commits."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from nats.js.errors import NotFoundError

from contracts.skus.v1 import PART_FILES_BUCKET
from servicekit.messaging import Bus


class PartFileBucket(Protocol):
    async def put(self, sha256: str, source: Path) -> None: ...


class NatsPartFileBucket:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def put(self, sha256: str, source: Path) -> None:
        store = await self.bus.object_store(PART_FILES_BUCKET)
        try:
            info = await store.get_info(sha256)
            if not info.deleted:
                return
        except NotFoundError:
            pass
        with source.open("rb") as stream:
            await store.put(sha256, stream)
