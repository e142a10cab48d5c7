"""The files a dispatch prints, from JetStream object stores keyed by sha256: a part's own upload in the
skus service's `part-files`, or a slice in the slicer's `sliced-files` (the bucket its `FileRef` names)."""

from __future__ import annotations

import hashlib

from contracts.skus.v1 import PART_FILES_BUCKET
from servicekit.messaging import Bus


class PartFileMissing(Exception):
    pass


class PartFiles:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def fetch(self, sha256: str, bucket: str | None = None) -> bytes:
        """`bucket` None is `part-files` (a FileRef without one is a part's upload). Another service
        writes these buckets: the gateway only reads them, and never creates one."""
        name = bucket or PART_FILES_BUCKET
        try:
            store = await self.bus.readable_object_store(name)
            result = await store.get(sha256)
        except Exception as exc:
            raise PartFileMissing(f"file {sha256} is not in the {name} file store") from exc
        data: bytes = result.data
        if hashlib.sha256(data).hexdigest() != sha256:
            raise PartFileMissing(f"file {sha256} is corrupt in the {name} file store")
        return data
