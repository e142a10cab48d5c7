"""Printer ownership between gateway replicas: leases in NATS JetStream key-value.

A lease is a key per printer whose value is the owning replica; it is renewed by compare-and-set on
the key's revision and expires with the bucket's TTL when its owner dies. The revision at
acquisition is the fencing epoch: the database refuses writes from an older epoch.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from nats.js.api import KeyValueConfig
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError, NotFoundError

from contracts.printers.v1 import LEASES_BUCKET, REPLICAS_BUCKET
from servicekit.messaging import Bus

log = logging.getLogger(__name__)


@dataclass
class Lease:
    printer_id: str
    epoch: int
    revision: int
    written_at: float = field(default_factory=time.monotonic)
    """When the key was last written by us (monotonic): its TTL runs from there."""


def rendezvous_owner(printer_id: str, replicas: list[str]) -> str:
    """Highest-random-weight hashing: adding or removing a replica moves only its share of printers."""
    return max(replicas, key=lambda r: hashlib.sha256(f"{printer_id}|{r}".encode()).digest())


class LeaseTable:
    def __init__(self, bus: Bus, instance: str, ttl_seconds: float) -> None:
        self.bus, self.instance, self.ttl = bus, instance, ttl_seconds
        self._leases: Any = None
        self._replicas: Any = None
        self.started_at = time.time()

    async def open(self) -> None:
        self._leases = await self._bucket(LEASES_BUCKET)
        self._replicas = await self._bucket(REPLICAS_BUCKET)

    async def _bucket(self, name: str) -> Any:
        try:
            return await self.bus.js.key_value(name)
        except (NotFoundError, BadRequestError):
            try:
                return await self.bus.js.create_key_value(KeyValueConfig(bucket=name, ttl=self.ttl, history=1))
            except BadRequestError:
                return await self.bus.js.key_value(name)

    async def heartbeat(self) -> None:
        await self._replicas.put(self.instance, str(self.started_at).encode())

    async def leave(self) -> None:
        try:
            await self._replicas.delete(self.instance)
        except Exception:
            log.debug("could not remove replica key", exc_info=True)

    async def live_replicas(self) -> list[str]:
        try:
            keys: list[str] = await self._replicas.keys()
        except NoKeysError:
            keys = []
        return sorted(set(keys) | {self.instance})

    async def owner(self, printer_id: str) -> str | None:
        try:
            entry = await self._leases.get(printer_id)
        except (KeyNotFoundError, NotFoundError):
            return None
        if entry.value is None or entry.operation is not None:
            return None
        value: bytes = entry.value
        return value.decode() or None

    async def acquire(self, printer_id: str) -> Lease | None:
        try:
            revision: int = await self._leases.create(printer_id, self.instance.encode())
            return Lease(printer_id, revision, revision)
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self._leases.get(printer_id)
        except (KeyNotFoundError, NotFoundError):
            return None
        if entry.value and entry.value.decode() == self.instance:
            revision = await self._leases.update(printer_id, self.instance.encode(), last=entry.revision)
            return Lease(printer_id, revision, revision)
        return None

    async def renew(self, lease: Lease) -> bool:
        sent = time.monotonic()
        try:
            lease.revision = await self._leases.update(lease.printer_id, self.instance.encode(), last=lease.revision)
            lease.written_at = sent
            return True
        except (KeyWrongLastSequenceError, KeyNotFoundError, NotFoundError, BadRequestError):
            return False

    async def release(self, lease: Lease) -> None:
        try:
            await self._leases.delete(lease.printer_id, last=lease.revision)
        except Exception:
            log.debug("release of %s failed (already taken or expired)", lease.printer_id, exc_info=True)
