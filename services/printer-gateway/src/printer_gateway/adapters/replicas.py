"""Which gateway replicas are alive: those whose heartbeat key exists in the replicas' key-value bucket."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from nats.js.errors import KeyNotFoundError, NotFoundError

from contracts.printers.v1 import REPLICAS_BUCKET


class ReplicaDirectory:
    """The live replicas, asked over one NATS connection: the service's own, or the heartbeat thread's (which
    lists them every beat interval, however far behind the service's event loop is)."""

    def __init__(self, js: Any, bucket: Any, instance: str, ttl: float) -> None:
        self.js, self.bucket, self.instance, self.ttl = js, bucket, instance, ttl
        self._gone: dict[str, float] = {}
        """Replicas whose heartbeat key we found missing, and when: a takeover of hundreds of printers asks once."""

    async def live(self) -> list[str]:
        """The replicas whose heartbeat key exists, from the bucket's stream itself. Not the client's `keys()`:
        its watcher may declare the listing complete before a key already sent has been read, and a replica
        left out makes every other one try to take its printers (seen: a key a few ms old missing)."""
        prefix = f"$KV.{REPLICAS_BUCKET}."
        info = await self.js.stream_info(f"KV_{REPLICAS_BUCKET}", subjects_filter=f"{prefix}>")
        named = [subject[len(prefix) :] for subject in (info.state.subjects or {})]
        others = [name for name in named if name != self.instance]
        gone = await asyncio.gather(*(self.gone(name) for name in others))  # a deleted key leaves a marker
        return sorted({name for name, left in zip(others, gone, strict=True) if not left} | {self.instance})

    async def gone(self, replica: str) -> bool:
        """Asked of the bucket itself, not of a listing: a steal must not rest on a stale or partial list.
        A replica found gone is not asked about again for a sixteenth of the TTL."""
        found = self._gone.get(replica)
        if found is not None and time.monotonic() - found < self.ttl / 16:
            return True
        try:
            entry = await self.bucket.get(replica)
        except (KeyNotFoundError, NotFoundError):
            self._gone[replica] = time.monotonic()
            return True
        self._gone.pop(replica, None)
        return entry.value is None or entry.operation is not None
