"""The two JetStream object stores the slicer touches: it reads sources from the skus service's
`part-files` and owns `sliced-files`, where each sliced file is keyed by its sha256 so the printer
gateways fetch it like a part file."""

from __future__ import annotations

from nats.js.errors import BucketNotFoundError, NotFoundError

from contracts.skus.v1 import PART_FILES_BUCKET
from contracts.slicer.v1 import SLICED_FILES_BUCKET
from servicekit.messaging import Bus
from slicer.service_layer.ports import SourceNotFound


class NatsSourceFiles:
    def __init__(self, bus: Bus, bucket: str = PART_FILES_BUCKET) -> None:
        self.bus, self.bucket = bus, bucket

    async def get(self, sha256: str) -> bytes:
        try:
            store = await self.bus.js.object_store(self.bucket)
        except BucketNotFoundError as exc:
            raise SourceNotFound(f"no {self.bucket} object store yet, so no source {sha256}") from exc
        try:
            found = await store.get(sha256)
        except NotFoundError as exc:
            raise SourceNotFound(f"source {sha256} is not in the {self.bucket} object store") from exc
        if found.data is None:
            raise SourceNotFound(f"source {sha256} in {self.bucket} has no content")
        return bytes(found.data)


class NatsSlicedFiles:
    def __init__(self, bus: Bus, bucket: str = SLICED_FILES_BUCKET) -> None:
        self.bus, self.bucket = bus, bucket

    async def ensure_bucket(self) -> None:
        """The slicer owns `sliced-files`: it creates it at start, so readers find it before the first slice."""
        await self.bus.object_store(self.bucket)

    async def put(self, sha256: str, content: bytes) -> None:
        """Idempotent: a file already stored under its sha256 is not written again."""
        store = await self.bus.object_store(self.bucket)
        try:
            info = await store.get_info(sha256)
            if not info.deleted:
                return
        except NotFoundError:
            pass
        await store.put(sha256, content)
