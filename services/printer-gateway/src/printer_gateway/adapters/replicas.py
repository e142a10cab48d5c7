"""Which gateway replicas are alive: those whose heartbeat key exists in the replicas' key-value bucket and
whose connection the NATS server has not seen close (`Silences`)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from nats.errors import NoRespondersError
from nats.js.errors import KeyNotFoundError, NotFoundError

from contracts.printers.v1 import GATEWAY_ALIVE_SUBJECT, REPLICAS_BUCKET

log = logging.getLogger(__name__)


class Silences:
    """Replicas nobody answers for: asked on their alive subject (`GATEWAY_ALIVE_SUBJECT`), the NATS server itself
    said "no responders", so the heartbeat thread's connection that answers it is closed. A process killed has
    its sockets closed by the kernel at once, and the server notices then, while its heartbeat key lives on until
    its TTL (3 s): seen so, a dead replica is known gone 1-1.5 s after it died (asked once its key stopped
    changing for two beats). Only the server's own answer counts (a replica too busy to answer in time is not
    silent), and only when it held for `confirm_after` seconds, over two probes at least that far apart: a
    replica whose connection was closed under it (a NATS server restarting) reconnects at once, and it treats
    its heartbeat as lapsed the moment it sees the disconnect (`LeaseTable.connection_lost`), so it checks its
    leases before commanding again. Shared by the heartbeat thread's directory and the service's (thread-safe)."""

    def __init__(self, confirm_after: float) -> None:
        self.confirm_after = confirm_after
        self._lock = threading.Lock()
        self._silent: dict[str, tuple[float, float]] = {}
        """Replica -> (first, last) monotonic times it was found silent, with no answer since the first."""

    def silent(self, replica: str, at: float) -> None:
        with self._lock:
            first, last = self._silent.get(replica, (at, at))
            self._silent[replica] = (first, at)
        if last - first < self.confirm_after <= at - first:
            log.warning("replica %s is silent (the NATS server says nobody answers for it): gone", replica)

    def heard(self, replica: str) -> None:
        with self._lock:
            found = self._silent.pop(replica, None)
        if found is not None and found[1] - found[0] >= self.confirm_after:
            log.warning("replica %s, found silent, is heard from again", replica)

    def dead(self, replica: str) -> bool:
        with self._lock:
            found = self._silent.get(replica)
        return found is not None and found[1] - found[0] >= self.confirm_after

    def forget_all_but(self, replicas: set[str]) -> None:
        """Replicas no longer listed are forgotten (their key expired: the key says gone from then on)."""
        with self._lock:
            for replica in [r for r in self._silent if r not in replicas]:
                del self._silent[replica]


class ReplicaDirectory:
    """The live replicas, asked over one NATS connection: the service's own, or the heartbeat thread's (which
    lists them every beat interval, however far behind the service's event loop is)."""

    def __init__(
        self, js: Any, bucket: Any, instance: str, ttl: float, nc: Any = None, silences: Silences | None = None
    ) -> None:
        """With `nc` and `silences`, a listing also asks the alive subject of each listed replica whose heartbeat
        key has not changed for two beat intervals (`STALE_BEATS`) over `nc`, and a replica found silent
        (`Silences.dead`) is gone, its key still there or not."""
        self.js, self.bucket, self.instance, self.ttl = js, bucket, instance, ttl
        self.nc, self.silences = nc, silences
        self._gone: dict[str, float] = {}
        """Replicas whose heartbeat key we found missing, and when: a takeover of hundreds of printers asks once."""
        self._beats: dict[str, tuple[int, float]] = {}
        """Replica -> the revision of its heartbeat key last read, and when (monotonic) we first read it."""

    async def live(self) -> list[str]:
        """The replicas whose heartbeat key exists, from the bucket's stream itself. Not the client's `keys()`:
        its watcher may declare the listing complete before a key already sent has been read, and a replica
        left out makes every other one try to take its printers (seen: a key a few ms old missing)."""
        prefix = f"$KV.{REPLICAS_BUCKET}."
        info = await self.js.stream_info(f"KV_{REPLICAS_BUCKET}", subjects_filter=f"{prefix}>")
        named = [subject[len(prefix) :] for subject in (info.state.subjects or {})]
        others = [name for name in named if name != self.instance]
        beats = await asyncio.gather(*(self._beat_of(name) for name in others))  # a deleted key leaves a marker
        present = [(name, beat) for name, beat in zip(others, beats, strict=True) if beat is not None]
        if self.nc is not None and self.silences is not None:
            self.silences.forget_all_but(set(named))
            self._beats = {name: seen for name, seen in self._beats.items() if name in named}
            now = time.monotonic()
            suspects = [name for name, beat in present if self._beating_stopped(name, beat, now)]
            await asyncio.gather(*(self._ask(name) for name in suspects))
            return sorted({*(name for name, _ in present if not self.silences.dead(name)), self.instance})
        return sorted({*(name for name, _ in present), self.instance})

    def _beating_stopped(self, replica: str, beat: int, now: float) -> bool:
        """Its heartbeat key unchanged for `STALE_BEATS` beat intervals: worth asking whether it still answers. A
        live replica beats every interval, so in a healthy fleet nobody is asked anything; a key written again
        means a replica heard from (its heartbeat and its answers share a connection)."""
        assert self.silences is not None
        seen = self._beats.get(replica)
        if seen is None or seen[0] != beat:
            self._beats[replica] = (beat, now)
            if seen is not None:
                self.silences.heard(replica)
            return False
        return now - seen[1] >= STALE_BEATS * self.ttl / 8

    async def _ask(self, replica: str) -> None:
        """Ask `replica`'s alive subject, and note what the server said (`Silences`)."""
        assert self.silences is not None
        try:
            await self.nc.request(GATEWAY_ALIVE_SUBJECT.format(instance=replica), b"", timeout=max(self.ttl / 8, 0.1))
        except NoRespondersError:
            self.silences.silent(replica, time.monotonic())
        except Exception:
            return  # no answer in time, or our own connection is down: not the server saying nobody is there
        else:
            self.silences.heard(replica)

    async def gone(self, replica: str) -> bool:
        """Asked of the bucket itself, not of a listing: a steal must not rest on a stale or partial list.
        A replica found silent is gone; one whose key was found gone is not asked about again for a sixteenth of
        the TTL."""
        if self.silences is not None and self.silences.dead(replica):
            return True
        return await self._beat_of(replica) is None

    async def _beat_of(self, replica: str) -> int | None:
        """The revision of `replica`'s heartbeat key, None if it is gone."""
        found = self._gone.get(replica)
        if found is not None and time.monotonic() - found < self.ttl / 16:
            return None
        try:
            entry = await self.bucket.get(replica)
        except (KeyNotFoundError, NotFoundError):
            self._gone[replica] = time.monotonic()
            return None
        self._gone.pop(replica, None)
        if entry.value is None or entry.operation is not None:
            return None
        revision: int = entry.revision
        return revision


STALE_BEATS = 2
"""A replica whose heartbeat key is unchanged for this many beat intervals is asked whether it still answers."""
