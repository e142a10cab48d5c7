"""Printer ownership between gateway replicas: leases in NATS JetStream key-value.

A lease is a key per printer whose value is the owning replica; it is renewed by compare-and-set on
the key's revision and expires with the bucket's TTL when its owner dies. The revision at
acquisition is the fencing epoch: the database refuses writes from an older epoch.

A replica's liveness is a heartbeat key of its own with a shorter TTL than the leases': once a
holder's heartbeat has expired, a survivor takes its leases over by compare-and-set on their
revision instead of waiting for them to expire, and the dead holder's renewal (compare-and-set on
the old revision) then fails. A replica whose own heartbeat may have expired sends no command.
A holder whose process died is taken over sooner: the NATS server says nobody answers its alive
subject (`replicas.Silences`); a live replica whose connection for that subject drops counts its
heartbeat as expired at once (`connection_lost`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from nats.js.api import KeyValueConfig
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError

from contracts.printers.v1 import LEASES_BUCKET, REPLICAS_BUCKET
from printer_gateway.adapters.heartbeat import Beats, HeartbeatThread
from printer_gateway.adapters.replicas import ReplicaDirectory, Silences
from servicekit.messaging import Bus

log = logging.getLogger(__name__)


@dataclass
class Lease:
    printer_id: str
    epoch: int
    revision: int
    written_at: float = field(default_factory=time.monotonic)
    """When the key was last written by us (monotonic): its TTL runs from there."""


def _weight(printer_id: str, replica: str) -> bytes:
    return hashlib.sha256(f"{printer_id}|{replica}".encode()).digest()


def rendezvous_owner(printer_id: str, replicas: list[str]) -> str:
    """Highest-random-weight hashing: adding or removing a replica moves only its share of printers."""
    return max(replicas, key=lambda r: _weight(printer_id, r))


def _ranking(printer_id: str, replicas: list[str]) -> tuple[str, ...]:
    return tuple(sorted(replicas, key=lambda r: _weight(printer_id, r), reverse=True))


def _first_live(ranking: tuple[str, ...], live: frozenset[str]) -> str:
    for replica in ranking:
        if replica in live:
            return replica
    raise ValueError("no live replica ranked")


class RendezvousOwners:
    """`rendezvous_owner` for a whole fleet, remembered: a supervision pass over 10,000 printers and 10 replicas
    hashed 100,000 times (a quarter of a second of CPU, every pass and at the very moment a takeover starts).
    Each printer's ranking of the replicas is kept, so a replica's death only skips it, and a printer is hashed
    again only when it is new or a replica it was never ranked against appears."""

    def __init__(self) -> None:
        self._ranked: frozenset[str] = frozenset()
        self._rankings: dict[str, tuple[str, ...]] = {}
        self._live: frozenset[str] = frozenset()
        self._owners: dict[str, str] = {}

    def owners(self, printer_ids: Iterable[str], replicas: Collection[str]) -> dict[str, str]:
        live = frozenset(replicas)
        if not live <= self._ranked:
            self._ranked, self._rankings = live, {}
        if live != self._live:
            self._live, self._owners = live, {}
        known, rankings, ranked = self._owners, self._rankings, sorted(self._ranked)
        owners: dict[str, str] = {}
        for printer_id in printer_ids:
            owner = known.get(printer_id)
            if owner is None:
                ranking = rankings.get(printer_id)
                if ranking is None:
                    ranking = rankings[printer_id] = _ranking(printer_id, ranked)
                owner = _first_live(ranking, live)
            owners[printer_id] = owner
        self._owners = owners
        if len(rankings) > len(owners):  # deleted printers are forgotten
            self._rankings = {p: rankings[p] for p in owners if p in rankings}
        return dict(owners)


class LeaseTable:
    def __init__(self, bus: Bus, instance: str, ttl_seconds: float, replica_ttl_seconds: float | None = None) -> None:
        self.bus, self.instance, self.ttl = bus, instance, ttl_seconds
        self.replica_ttl = replica_ttl_seconds if replica_ttl_seconds is not None else ttl_seconds
        self._leases: Any = None
        self._replicas: Any = None
        self.started_at = time.time()
        self._alive_until = 0.0
        """Monotonic time until which our heartbeat key surely exists: sent before then, so it expires after."""
        self.lapsed = True
        """Our heartbeat may have expired since the last check of our leases (or none was made yet): a
        survivor may have taken some, so no command until they are checked (`confirm_leases`)."""
        self.lapses = 0
        """Gaps in the heartbeat so far: a check of the leases confirms only if no new gap began meanwhile."""
        self._beats = threading.Lock()
        """The heartbeat's bookkeeping is written by its thread (`keep_heartbeat`) and read and confirmed here."""
        self._beater: HeartbeatThread | None = None
        self.silences = Silences(confirm_after=self.replica_ttl / 8)
        """Replicas the NATS server said nobody answers for, noted by the heartbeat thread's listings."""

    async def open(self) -> None:
        self._leases = await self._bucket(LEASES_BUCKET, self.ttl)
        self._replicas = await self._bucket(REPLICAS_BUCKET, self.replica_ttl)
        self.directory = ReplicaDirectory(
            self.bus.js, self._replicas, self.instance, self.replica_ttl, self.bus.nc, self.silences
        )

    async def _bucket(self, name: str, ttl: float) -> Any:
        try:
            kv = await self.bus.js.key_value(name)
        except (NotFoundError, BadRequestError):
            try:
                return await self.bus.js.create_key_value(KeyValueConfig(bucket=name, ttl=ttl, history=1))
            except BadRequestError:
                kv = await self.bus.js.key_value(name)
        await self._keep_ttl(kv, name, ttl)
        return kv

    async def _keep_ttl(self, kv: Any, name: str, ttl: float) -> None:
        """A bucket keeps the TTL it was created with; a changed setting is applied to the existing one (the
        replica started last wins while replicas with different settings run side by side)."""
        config = (await kv.status()).stream_info.config
        if config.max_age is not None and abs(config.max_age - ttl) < 0.001:
            return
        window = min(config.duplicate_window or ttl, ttl)
        try:
            await self.bus.js.update_stream(config, max_age=ttl, duplicate_window=window)
            log.info("key-value bucket %s: TTL %s s -> %s s", name, config.max_age, ttl)
        except Exception:
            log.warning("could not change the TTL of key-value bucket %s to %s s", name, ttl, exc_info=True)

    async def heartbeat(self) -> None:
        """One heartbeat, from the caller's event loop (the first one, before `keep_heartbeat`; tests)."""
        sent = time.monotonic()
        await self._replicas.put(self.instance, self._heartbeat_value())
        self.beat_sent(sent)

    def _heartbeat_value(self) -> bytes:
        return str(self.started_at).encode()

    def beat_sent(self, sent: float) -> None:
        """A heartbeat sent at `sent` (monotonic) was written: our key surely lives until its TTL from then. One
        sent once the last had surely expired opens a gap (`lapsed`). From any thread."""
        with self._beats:
            if sent >= self._alive_until:
                self.lapsed = True
                self.lapses += 1
            self._alive_until = max(self._alive_until, sent + self.replica_ttl)

    def connection_lost(self) -> None:
        """The heartbeat thread's connection, the one that answers our alive subject, was lost: the other replicas
        may find us silent and take our leases over without waiting for our key to expire, so our heartbeat
        counts as expired now (no command until the leases are checked after the next beat). From any thread."""
        with self._beats:
            self._alive_until = 0.0
        log.warning("the heartbeat's connection was lost: no command until it is back and the leases are checked")

    async def keep_heartbeat(
        self, stall_seconds: float, on_replicas: Callable[[list[str], float], None] | None = None
    ) -> None:
        """Beat every eighth of the replicas' TTL from now on, on a thread of its own (`HeartbeatThread`) while
        this event loop turns (`loop_turned`) at least every `stall_seconds`; as often, the thread lists the live
        replicas too, and hands each list to `on_replicas` on this event loop."""
        if self._beater is not None:
            return
        options = self.bus.connect_options(name=f"{self.bus.service} heartbeat {self.instance}")
        beater = HeartbeatThread(
            options,
            self.instance,
            self._heartbeat_value(),
            Beats(self.replica_ttl / 8, stall_seconds, self.replica_ttl),
            self.beat_sent,
            on_replicas,
            connection_lost=self.connection_lost,
            silences=self.silences,
        )
        await beater.start()
        self._beater = beater

    def loop_turned(self) -> None:
        if self._beater is not None:
            self._beater.loop_turned()

    def confirm_leases(self, lapses: int | None = None) -> None:
        """Every lease held was renewed (or let go) after the heartbeat came back (after gap number
        `lapses`, if given, and no later one): commands may go again."""
        with self._beats:
            if lapses is None or lapses == self.lapses:
                self.lapsed = False

    def presumed_alive(self) -> bool:
        """True while our heartbeat key surely has not expired, and has not since our leases were last
        checked: no survivor can have taken one of them over."""
        return not self.lapsed and time.monotonic() < self._alive_until

    async def leave(self) -> None:
        beater, self._beater = self._beater, None
        if beater is not None:
            await beater.stop()
        with self._beats:
            self._alive_until = 0.0
        try:
            await self._replicas.delete(self.instance)
        except Exception:
            log.debug("could not remove replica key", exc_info=True)

    async def live_replicas(self) -> list[str]:
        return await self.directory.live()

    async def replica_gone(self, replica: str) -> bool:
        return await self.directory.gone(replica)

    async def owner(self, printer_id: str) -> str | None:
        try:
            entry = await self._leases.get(printer_id)
        except (KeyNotFoundError, NotFoundError):
            return None
        if entry.value is None or entry.operation is not None:
            return None
        value: bytes = entry.value
        return value.decode() or None

    async def acquire(self, printer_id: str, live: Collection[str] = ()) -> Lease | None:
        """Create the printer's lease, or take it over: from ourselves (a restart under the same name), or by
        compare-and-set from a holder that is not in `live` and whose heartbeat has expired."""
        sent = time.monotonic()
        try:
            revision: int = await self._leases.create(printer_id, self.instance.encode())
            return Lease(printer_id, revision, revision, sent)
        except KeyWrongLastSequenceError:
            pass
        except (KeyNotFoundError, NotFoundError):
            return None  # create found the key, then it expired before create could look at it: next pass
        try:
            entry = await self._leases.get(printer_id)
        except (KeyNotFoundError, NotFoundError):
            return None
        holder = entry.value.decode() if entry.value else ""
        if holder and holder != self.instance and (holder in live or not await self.replica_gone(holder)):
            return None
        sent = time.monotonic()
        try:
            revision = await self._leases.update(printer_id, self.instance.encode(), last=entry.revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError, NotFoundError, BadRequestError):
            return None  # someone else was quicker, or it expired meanwhile: the next pass sees
        if holder != self.instance:
            log.info("took over the lease on printer %s from %s, whose heartbeat expired", printer_id, holder)
        return Lease(printer_id, revision, revision, sent)

    async def still_held(self, lease: Lease) -> bool:
        """The lease is ours, asked of the bucket (before a command to the printer: a survivor may have taken it
        over since the last renewal): it names us at a revision written since we acquired it. Not just the one we
        last heard of: renewals run beside this read, so its answer may show a renewal whose own answer we have
        not read yet (or lost), or come after a renewal it did not see. A survivor's takeover writes its own name,
        and SERVICE_INSTANCE is unique per live replica."""
        try:
            entry = await self._leases.get(lease.printer_id)
        except (KeyNotFoundError, NotFoundError):
            return False
        ours = entry.value == self.instance.encode()
        return bool(ours and entry.revision is not None and entry.revision >= lease.epoch)

    async def renew(self, lease: Lease) -> bool:
        """Compare-and-set on the revision we last wrote. A renewal whose answer timed out may still have
        been written: the next one then finds a newer revision naming us, which is ours (a survivor's takeover
        writes its own name), and goes on from it rather than giving up a live printer."""
        sent = time.monotonic()
        try:
            lease.revision = await self._leases.update(lease.printer_id, self.instance.encode(), last=lease.revision)
            lease.written_at = sent
            return True
        except KeyWrongLastSequenceError:
            pass
        except (KeyNotFoundError, NotFoundError, BadRequestError):
            return False
        try:
            entry = await self._leases.get(lease.printer_id)
        except (KeyNotFoundError, NotFoundError):
            return False
        if entry.value != self.instance.encode() or entry.revision is None or entry.revision < lease.revision:
            return False
        try:
            lease.revision = await self._leases.update(lease.printer_id, self.instance.encode(), last=entry.revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError, NotFoundError, BadRequestError):
            return False
        lease.written_at = sent
        return True

    async def release(self, lease: Lease) -> None:
        try:
            await self._leases.delete(lease.printer_id, last=lease.revision)
        except Exception:
            log.debug("release of %s failed (already taken or expired)", lease.printer_id, exc_info=True)
