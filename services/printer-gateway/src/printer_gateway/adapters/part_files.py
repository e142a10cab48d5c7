"""Part files come from the skus service's JetStream object store, keyed by sha256."""

from __future__ import annotations

import hashlib

from contracts.skus.v1 import PART_FILES_BUCKET
from servicekit.messaging import Bus


class PartFileMissing(Exception):
    pass


class PartFiles:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def fetch(self, sha256: str) -> bytes:
        store = await self.bus.object_store(PART_FILES_BUCKET)
        try:
            result = await store.get(sha256)
        except Exception as exc:
            raise PartFileMissing(f"part file {sha256} is not in the file store") from exc
        data: bytes = result.data
        if hashlib.sha256(data).hexdigest() != sha256:
            raise PartFileMissing(f"part file {sha256} is corrupt in the file store")
        return data
