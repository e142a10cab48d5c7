"""The gateway's side of the printers: holds leases, keeps one connection per owned printer, feeds
every status into the service layer and carries out dispatches once they are recorded."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from nats.errors import NoRespondersError

from contracts.envelope import Envelope
from contracts.printers.v1 import GATEWAY_FORWARD_SUBJECT
from printer_gateway.adapters.driver import (
    CameraUnavailable,
    CommandTimedOut,
    MaterialRequirement,
    PrinterCommandError,
    PrinterDriver,
    PrintJob,
    monotonic,
)
from printer_gateway.adapters.drivers import make_driver
from printer_gateway.adapters.leases import Lease, LeaseTable, RendezvousOwners
from printer_gateway.adapters.part_files import PartFileMissing, PartFiles
from printer_gateway.adapters.repository import StaleLease
from printer_gateway.adapters.video import FfmpegDecoders, H264Decoders
from printer_gateway.config import Settings
from printer_gateway.domain import commands
from printer_gateway.domain.commands import StartPrint
from printer_gateway.domain.printer_status import PrinterStatus
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.handlers import Deps, DispatchPlan
from printer_gateway.service_layer.status_batches import StatusBatches
from printer_gateway.service_layer.unit_of_work import PrinterGatewayUnitOfWork
from servicekit.secrets import SecretCipher
from servicekit.tracing import span

log = logging.getLogger(__name__)

T = TypeVar("T")


CAMERA_REQUEST = "Printfarm-Camera"
"""Header of a camera request on the owner's forward subject (its body is the printer id)."""
CAMERA_ERROR = "Printfarm-Camera-Error"
"""Header of a camera answer that carries no picture, with the reason."""


START_MARGIN = 0.15
"""The share of a dispatch's time to start (90 s by default) kept for the printer to start and say so: the upload
must end, and the start be sent, before the rest has passed. A start sent later might be seen after the deadline
gave the job back, and the job printed twice."""

MOVED_BEFORE_SENT = "the printer changed gateway replica before the job was sent"
"""Why a recorded dispatch is given back as not started, at once: the command is spent (carried out once per
envelope), so no replica would send the job, and its deadline (the queue's, 90 s by default) is far."""


class OwnerUnreachable(Exception):
    """The printer's owner cannot take a command now (it died or just let go); retried later."""


CONCURRENCY = 32
"""Printer steps (lease calls, connects, disconnects) in flight at once during one supervision pass."""

WOKEN_PASS_GAP_SECONDS = 1.0
"""A pass woken by the API (a printer registered, changed or deleted) starts at least this long after the
previous one began. Every registration woke a pass, and each pass lists the whole fleet: registering 10,000
printers over 10 replicas kept every replica listing it back to back, more work with every printer added. A
change of the live replicas (a takeover) is not held back."""

MUTE_CALLS = 256
"""Mutes (or unmutes) in flight at once, an UNSUBSCRIBE and its acknowledgement each. A takeover's thousand mutes
fill the event loop's turns for a while (its first connect came 2 s after its leases on a saturated CPU), but 16
at a time was far worse: the held printers went on reporting for seconds longer (10,000-printer handover 26.7 s
against 12-16)."""

LEASE_CALLS = 256
"""Lease acquisitions in flight at once: a few small key-value requests each, so a takeover of hundreds of
printers asks for all their leases together instead of in lockstep rounds of `CONCURRENCY` (each round some
event-loop turns long, seconds in all on a saturated CPU)."""

CONNECT_WAIT_SECONDS = 5.0
"""How long a takeover waits for one printer's session to open (or its failure to be reported) before giving
its connect slot to the next (the connection keeps trying on its own)."""

STATUS_WRITES = 8
"""Status writes in flight at once, below the database pool's 10 connections: a takeover's first statuses
(hundreds at once) took the pool's 20 overflow connections, each opened (a PostgreSQL backend started, the
statements prepared again) and closed again as soon as it came back: asyncpg's connect and its first
statements were 3-5 % of a survivor's samples in a saturated takeover at 10,000 printers. Reports that arrive
while all are busy wait for the next free writer and go in one transaction (`StatusBatches`)."""

STATUS_BATCH = 64
"""The most reports one status transaction writes."""


FIRST_STATUS_WAIT_SECONDS = 5.0
"""How long, once a takeover's connects are done, the held printers stay muted waiting for the printers taken over
to have their first status written (a printer that never answers must not keep the others quiet)."""

MUTE_MAX_SECONDS = 20.0
"""The longest the held printers' reports stay muted for one takeover, however long its connects take: their
statuses (a print ending, a filament run-out) are at most this late."""


async def _bounded(steps: Iterable[Awaitable[T]], limit: int = CONCURRENCY) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def one(step: Awaitable[T]) -> T:
        async with semaphore:
            return await step

    return list(await asyncio.gather(*(one(step) for step in steps)))


@dataclass
class Held:
    lease: Lease
    connection: PrinterDriver
    connection_version: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_status: PrinterStatus | None = None
    dispatching: bool = False
    probed_at: float = 0.0
    written_at: float = 0.0
    first_written: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a status of this connection is in the database."""


class _Muting:
    """The printers one takeover muted, unmuted once: when the printers taken over have reported, or by a timer if
    that runs long. Mutes not sent yet are called off first, so none comes after the unmute (a mute sent is undone by
    the unmute's subscription, which follows it on the same connection)."""

    def __init__(
        self, held: list[Held], muting: asyncio.Task[None], unmute: Callable[[list[Held]], Awaitable[None]]
    ) -> None:
        self.held, self._muting, self._unmute = held, muting, unmute
        self._unmuted = False

    async def unmute(self) -> None:
        if self._unmuted:
            return
        self._unmuted = True
        self._muting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._muting
        await self._unmute(self.held)


class Fleet:
    def __init__(
        self,
        settings: Settings,
        instance: str,
        uow_factory: Callable[[], PrinterGatewayUnitOfWork],
        leases: LeaseTable,
        cipher: SecretCipher,
        part_files: PartFiles,
        deps: Deps,
        decoders: H264Decoders | None = None,
    ) -> None:
        self.settings, self.instance, self.uow_factory = settings, instance, uow_factory
        self.leases, self.cipher, self.part_files, self.deps = leases, cipher, part_files, deps
        self.clock = deps.clock
        self.decoders = decoders if decoders is not None else FfmpegDecoders(settings.camera_decoders)
        """Shared by every held printer's X1/H2 camera: the bound on decoder processes is per replica."""
        self.held: dict[str, Held] = {}
        self._task: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._checker: asyncio.Task[None] | None = None
        self._renewing = asyncio.Lock()
        """One renewal pass at a time: two compare-and-sets of one lease would make the loser look lost."""
        self._acquiring = asyncio.Lock()
        """One `_take_mine` at a time: two would both acquire a printer and hold it twice."""
        self._listed: tuple[list[str], float] = ([], -math.inf)
        """The heartbeat thread's last listing of the live replicas, and when it came (monotonic)."""
        self._wake = asyncio.Event()
        self._replicas_changed = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._replicas: list[str] = []
        self._owners = RendezvousOwners()
        self._versions: dict[str, int] = {}
        """Live printers and their connection versions as the last supervision pass listed them."""
        self._supervised_over: list[str] = []
        """The live replicas the last supervision pass shared the printers over."""
        self._taking = 0
        """Printers being connected by a takeover now; meanwhile progress-only writes of the others wait."""
        self._statuses = StatusBatches(self._write_statuses, writers=STATUS_WRITES, most=STATUS_BATCH)

    def owns(self, printer_id: str) -> bool:
        """Held, and our heartbeat surely alive: once it may have expired, a survivor may be taking the
        printer over, so a command waits (redelivered) rather than risk two replicas commanding it."""
        return printer_id in self.held and self.leases.presumed_alive()

    async def owner_of(self, printer_id: str) -> str | None:
        return await self.leases.owner(printer_id)

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.leases.open()
        # The thread answers our alive subject before its first beat lists us (`replicas.Silences`).
        await self.leases.keep_heartbeat(self.settings.heartbeat_stall_seconds, self._replicas_listed)
        await self.leases.heartbeat()
        self._beat = asyncio.create_task(self._watch_heartbeat(), name="fleet-heartbeat")
        self._task = asyncio.create_task(self._run(), name="fleet-supervisor")
        self._keeper = asyncio.create_task(self._keep_leases(), name="fleet-leases")

    async def stop(self) -> None:
        for task in (self._task, self._keeper, self._beat, self._checker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await _bounded(self._let_go(printer_id, release=True) for printer_id in list(self.held))
        await self.leases.leave()

    async def _watch_heartbeat(self) -> None:
        """Every eighth of the heartbeat's TTL: tell the heartbeat's thread this event loop still turns, and once the
        heartbeat had a gap, check the leases (on a task of its own: renewing a thousand leases takes a while)."""
        interval = self.settings.replica_ttl_seconds / 8
        while True:
            self.leases.loop_turned()
            if self.leases.lapsed and (self._checker is None or self._checker.done()):
                self._checker = asyncio.create_task(self._check_leases(), name="fleet-lease-check")
            await asyncio.sleep(interval)

    async def _check_leases(self) -> None:
        """After a gap in the heartbeat long enough for a survivor to take leases over: renew every lease
        held now (a taken one fails, and is let go) before commanding any printer again."""
        lapses = self.leases.lapses
        held = list(self.held.items())
        if held:
            log.warning("heartbeat lapsed; checking %s leases before commanding printers again", len(held))
        if await self._renew_due(held, every=True):
            self.leases.confirm_leases(lapses)

    async def _keep_leases(self) -> None:
        """Lease renewal on its own task: slow supervision work (connecting hundreds of printers, a busy
        database) must never let a lease expire."""
        interval = self.settings.lease_ttl_seconds / 6
        while True:
            try:
                await self._renew_due(list(self.held.items()))
            except Exception:
                log.exception("lease renewal pass failed")
            await asyncio.sleep(interval)

    def _replicas_listed(self, replicas: list[str], listed_at: float) -> None:
        """The heartbeat's thread listed the live replicas (every beat interval): a change wakes supervision, so a dead
        replica's printers are taken over as soon as its heartbeat expires, not at the next supervision interval,
        and however far behind this event loop is (the listing's round trips are the thread's). A replica gone starts
        the takeover of its printers at once, beside a supervision pass that may be under way (one over 10,000
        printers took seconds on a saturated CPU, and the takeover waited for it)."""
        self._listed = (replicas, listed_at)
        if replicas != self._replicas:
            died = not set(self._replicas) <= set(replicas)
            self._replicas = replicas
            self._replicas_changed.set()
            self.wake()
            if died and self._versions:
                self._spawn(self._take_mine(self._versions, replicas, mute_held=True), "takeover")

    async def _live_replicas(self) -> list[str]:
        """The heartbeat thread's last listing if it is fresh (made within two beats), else asked now."""
        replicas, listed_at = self._listed
        if time.monotonic() - listed_at <= self.settings.replica_ttl_seconds / 4:
            return replicas
        return await self.leases.live_replicas()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.supervise_once()
            except Exception:
                log.exception("fleet supervision pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.supervise_interval_seconds)
            rest = started + WOKEN_PASS_GAP_SECONDS - time.monotonic()
            if rest > 0 and not self._replicas_changed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._replicas_changed.wait(), timeout=rest)
            self._wake.clear()
            self._replicas_changed.clear()

    async def supervise_once(self) -> None:
        """One pass: take or let go of printers by rendezvous over the live replicas (a printer being
        uploaded to stays until the upload ends), write statuses that are behind, and run the dispatch
        deadlines that fell due. A few queries per pass whatever the fleet size, and the per-printer
        steps run concurrently: a takeover of hundreds of printers must not go one by one. Printers to
        take over come before the writes held back for the printers already held."""
        replicas = await self._live_replicas()
        self._replicas = replicas
        if replicas != self._supervised_over and self._versions:
            # A replica died: its printers are taken over from the fleet as the last pass saw it, before this
            # pass's queries (listing 10,000 printers takes a second or more on a saturated CPU).
            died = not set(self._supervised_over) <= set(replicas)
            await self._take_mine(self._versions, replicas, mute_held=died)
        self._supervised_over = replicas
        now = self.clock()
        async with self.uow_factory() as uow:
            versions = await uow.printers.live_connection_versions()
            overdue = await uow.printers.dispatches_past_deadline(now)
        self._versions = versions
        mine = self._mine(versions, self._replicas)  # the newest listing: a takeover may have begun meanwhile
        leaving = [
            printer_id
            for printer_id, held in self.held.items()
            if printer_id not in versions
            or versions[printer_id] != held.connection_version
            or (printer_id not in mine and not held.dispatching)
        ]
        await _bounded(self._let_go(printer_id, release=True) for printer_id in leaving)
        keep = list(self.held.items())
        await self._take_mine(versions, replicas)
        await self._resync(keep)
        for printer_id, held in keep:
            if printer_id in self.held and printer_id in overdue:
                await self._check_deadline(printer_id, held)
            if printer_id in self.held:
                await self._probe_if_refusing(held)

    def _mine(self, versions: dict[str, int], replicas: list[str]) -> set[str]:
        return {pid for pid, owner in self._owners.owners(versions, replicas).items() if owner == self.instance}

    async def _take_mine(self, versions: dict[str, int], replicas: list[str], *, mute_held: bool = False) -> None:
        """Acquire the leases of the printers rendezvous gives this replica and it does not hold yet, and connect.
        One at a time (a takeover begun on a replica's death and a supervision pass): two would both acquire a
        printer (the second finding its own name on the lease) and hold it twice."""
        async with self._acquiring:
            wanted = sorted(self._mine(versions, replicas) - set(self.held))
            # A dead replica's printers: the held ones are muted before the leases are asked for, not once they are
            # acquired (three round trips each, a second of a saturated 10,000-printer handover, while the held
            # printers' reports took the survivor's and their simulator's CPU).
            muted = self._mute_others(len(wanted)) if mute_held else None
            try:
                leases = await _bounded((self._acquire(printer_id, replicas) for printer_id in wanted), LEASE_CALLS)
            except BaseException:
                if muted is not None:
                    self._spawn(muted.unmute(), "unmute-reports")
                raise
            acquired = [lease for lease in leases if lease is not None]
            if acquired or muted is not None:
                await self._take(acquired, versions, muted=muted)

    async def _acquire(self, printer_id: str, replicas: list[str]) -> Lease | None:
        """One printer's lease, or None: a failure with one of hundreds must not fail the whole takeover pass."""
        try:
            return await self.leases.acquire(printer_id, replicas)
        except Exception:
            log.warning("acquiring the lease on printer %s failed; next pass", printer_id, exc_info=True)
            return None

    async def _renew_due(self, held: list[tuple[str, Held]], *, every: bool = False) -> bool:
        """Renew leases a third of a TTL old (or `every` one), concurrently: a large fleet must not renew
        one by one. While a takeover connects, only those half a TTL old: the renewals wait for the printers
        being taken over, and still leave half the TTL. A lease given up meanwhile (its renewal then fails)
        is not mistaken for a lost one. False when a renewal got no answer (so whether the lease is still
        ours is not known)."""
        async with self._renewing:
            due_before = time.monotonic() - self.settings.lease_ttl_seconds / (2 if self._taking else 3)
            # Counted from the lease's last write as sent (its key's TTL runs from there), not from its answer, which
            # a saturated loop reads seconds later: so counted, renewals under load could come more than a TTL apart
            # (an overloaded 10,000-printer run lost leases under live replicas, this among its causes).
            due = [
                (pid, h) for pid, h in held if (every or h.lease.written_at <= due_before) and self.held.get(pid) is h
            ]
            if not due:
                return True
            results = await asyncio.gather(*(self.leases.renew(h.lease) for _, h in due), return_exceptions=True)
        for (printer_id, h), ok in zip(due, results, strict=True):
            if isinstance(ok, BaseException):
                log.warning("renewing the lease on printer %s failed: %r", printer_id, ok)
            elif ok is not True and self.held.get(printer_id) is h:
                log.warning("lease on printer %s lost; disconnecting", printer_id)
                await self._let_go(printer_id, release=False)
        return not any(isinstance(ok, BaseException) for ok in results)

    async def _probe_if_refusing(self, held: Held) -> None:
        """A printer that refused control (developer mode off) is asked again now and then, so it
        leaves `error` once the operator fixed it; nothing else would send it a command."""
        status = held.connection.status
        if status is None or not held.connection.refusing_control or status.state != "error":
            return
        if time.monotonic() - held.probed_at < self.settings.control_probe_seconds:
            return
        held.probed_at = time.monotonic()
        self._spawn(self._probe(held), f"probe-{held.lease.printer_id}")

    async def _probe(self, held: Held) -> None:
        with contextlib.suppress(PrinterCommandError):
            await held.connection.probe_control()

    async def _take(self, leases: list[Lease], versions: dict[str, int], *, muted: _Muting | None = None) -> None:
        """Connect to printers whose leases were just acquired: their settings in one query, every lease
        held (so renewed) at once, then `takeover_connects` connections started at a time, each until its
        session is open (its TLS handshake done). Hundreds of TLS handshakes at once on a busy CPU make each
        slow enough to risk the connect timeout and its backoff; in small waves each is quick, and the event
        loop stays free for lease renewal and the other printers. The first status follows outside the slot:
        held until it came, a slot spent the round trips after the handshake waiting (on a saturated CPU each
        is an event-loop turn of the gateway and of the printer), and the waves went in lockstep. `muted`: the held
        printers this takeover muted (`_mute_others`), unmuted once those taken over have reported."""
        taken: list[Held] = []
        try:
            await self._connect_taken(leases, versions, taken)
        finally:
            if muted is not None:
                self._spawn(self._unmute_once_reported(taken, muted), "unmute-reports")

    async def _connect_taken(self, leases: list[Lease], versions: dict[str, int], taken: list[Held]) -> None:
        """`_take`'s work: each printer held as it is set up is appended to `taken`."""
        if not leases:
            return
        async with self.uow_factory() as uow:
            found = await uow.printers.connection_details([lease.printer_id for lease in leases])
        for lease in leases:
            printer_id = lease.printer_id
            if printer_id not in found:
                await self.leases.release(lease)
                continue
            printer, token = found[printer_id]
            connection = make_driver(
                printer,
                self.cipher.decrypt(token),
                self.settings,
                functools.partial(self._on_status, printer_id),
                self.decoders,
            )
            held = Held(lease, connection, versions.get(printer_id, printer.connection_version))
            self.held[printer_id] = held
            taken.append(held)
            log.info("took printer %s (%s) with lease epoch %s", printer.name, printer_id, lease.epoch)
        self._taking += len(taken)
        try:
            await _bounded((self._connect(held) for held in taken), self.settings.takeover_connects)
        finally:
            self._taking -= len(taken)

    async def _unmute_once_reported(self, taken: list[Held], muted: _Muting) -> None:
        """Unmute once every printer taken over has its first status written (`FIRST_STATUS_WAIT_SECONDS` at most
        after the connects): unmuted as the connects ended, a thousand held printers' full reports came at once,
        just as the last printers taken over sent their first, and those waited behind them (the last 4-5 s of a
        10,000-printer handover)."""
        waits = [h.first_written.wait() for h in taken if self.held.get(h.lease.printer_id) is h]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), FIRST_STATUS_WAIT_SECONDS)
        await muted.unmute()

    def _mute_others(self, taking: int) -> _Muting | None:
        """For a big takeover (`taking` of a dead replica's printers), mute the printers held before it (not one being
        sent a job); they speak again when the caller unmutes them (`_unmute_once_reported`), or after
        `MUTE_MAX_SECONDS` at the latest. Not for printers newly registered or a replica joining: muting and
        unmuting every held printer on each pass of a bulk registration made registering 3,000 printers over 3
        replicas take 54.5 s instead of 38.2. Called before the printers taken over are held."""
        if taking < self.settings.mute_reports_from:
            return None
        others = [h for h in self.held.values() if not h.dispatching]
        if not others:
            return None
        log.info("muting the reports of %s printers while %s are taken over", len(others), taking)
        muting = _Muting(others, self._spawn(self._mute(others), "mute-reports"), self._unmute)
        asyncio.get_running_loop().call_later(MUTE_MAX_SECONDS, lambda: self._spawn(muting.unmute(), "unmute-reports"))
        return muting

    async def _mute(self, held: list[Held]) -> None:
        await _bounded((self._quietly(h.connection.mute_reports, "muting") for h in held), MUTE_CALLS)

    async def _unmute(self, held: list[Held]) -> None:
        """Only printers still held by the same `Held` (one let go and taken again has a new connection)."""
        current = [h for h in held if self.held.get(h.lease.printer_id) is h]
        await _bounded((self._quietly(h.connection.unmute_reports, "unmuting") for h in current), MUTE_CALLS)

    async def _quietly(self, step: Callable[[], Awaitable[None]], doing: str) -> None:
        try:
            await step()
        except Exception:
            log.warning("%s a printer's reports failed", doing, exc_info=True)

    async def _connect(self, held: Held) -> None:
        if self.held.get(held.lease.printer_id) is not held:
            return  # let go (lease lost, printer deleted) before its turn came
        await held.connection.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(held.connection.attempted.wait(), CONNECT_WAIT_SECONDS)

    async def _let_go(self, printer_id: str, *, release: bool) -> None:
        held = self.held.pop(printer_id, None)
        if held is None:
            return
        await held.connection.close()
        if release:
            await self.leases.release(held.lease)

    async def _on_status(self, printer_id: str, status: PrinterStatus) -> None:
        held = self.held.get(printer_id)
        if held is None:
            return
        async with held.lock:
            await self._record(printer_id, held, status)

    async def _write_behind(self, printer_id: str, held: Held) -> None:
        """Write the connection's status as it is once the lock is ours, not as it was when the pass looked: a
        status taken before waiting may be older than one the connection wrote meanwhile, and writing it stepped
        the printer back (a finished print seen running again, then ending again: its bed marked not clear
        after the operator had cleared it, and the next job refused)."""
        async with held.lock:
            status = held.connection.status
            if status is not None and self.held.get(printer_id) is held:
                await self._record(printer_id, held, status)

    async def _record(self, printer_id: str, held: Held, status: PrinterStatus) -> None:
        """Write `status` unless it is the last one written, or only progress held back; under `held.lock`."""
        if status == held.last_status:
            return
        last = held.last_status
        throttle = self.settings.progress_write_seconds
        if (
            last is not None
            and last.differs_only_in_progress(status)
            and (self._taking or held.written_at > time.monotonic() - throttle)
        ):
            return
        try:
            cmd = commands.ObserveStatus(printer_id, status, held.lease.epoch, self.instance)
            written = await self._statuses.write(cmd)
        except Exception:
            log.exception("recording the status of printer %s failed; retried on the next pass", printer_id)
            return
        if written:
            held.last_status, held.written_at = status, time.monotonic()
            held.first_written.set()
        else:
            log.warning("printer %s was taken over by another replica", printer_id)
            self._spawn(self._let_go(printer_id, release=False), f"let-go-{printer_id}")

    async def _write_statuses(self, reports: Sequence[commands.ObserveStatus]) -> frozenset[str]:
        return await handlers.observe_statuses(commands.ObserveStatuses(tuple(reports)), self.uow_factory(), self.deps)

    def _spawn(self, step: Awaitable[None], name: str) -> asyncio.Task[None]:
        """Run beside the caller: a connection's own task must not wait for that connection to close."""
        task = asyncio.ensure_future(step)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _resync(self, held: list[tuple[str, Held]]) -> None:
        """A status not written yet is written now: one whose write failed (database busy or down; the
        connection only reports changes, so an idle printer would stay wrong), or progress held back
        by `PROGRESS_WRITE_SECONDS`."""
        behind = [
            (printer_id, h)
            for printer_id, h in held
            if h.connection.status is not None and h.connection.status != h.last_status and not h.lock.locked()
        ]
        await _bounded(self._write_behind(printer_id, h) for printer_id, h in behind)

    async def _check_deadline(self, printer_id: str, held: Held) -> None:
        async with held.lock:
            try:
                cmd = commands.CheckDeadline(printer_id, held.lease.epoch)
                await handlers.check_deadline(cmd, self.uow_factory(), self.deps)
            except StaleLease:
                await self._let_go(printer_id, release=False)

    def launch(self, plan: DispatchPlan) -> None:
        """Upload and start in the background; the consumer that recorded the dispatch has committed. A printer let
        go meanwhile has the dispatch given back at once (`MOVED_BEFORE_SENT`), not at its deadline."""
        held = self.held.get(plan.printer_id)
        if held is None:
            self._spawn(self._dispatch_failed(plan, MOVED_BEFORE_SENT), f"dispatch-{plan.command.job_id}")
            return
        held.dispatching = True
        self._spawn(self._dispatch(plan, held), f"dispatch-{plan.command.job_id}")

    async def _dispatch(self, plan: DispatchPlan, held: Held) -> None:
        attributes = {"printfarm.job_id": plan.command.job_id, "printfarm.printer_id": plan.printer_id}
        with span("printer dispatch", attributes=attributes):
            await self._dispatch_traced(plan, held)

    async def _dispatch_traced(self, plan: DispatchPlan, held: Held) -> None:
        cmd: StartPrint = plan.command
        try:
            data = await self.part_files.fetch(cmd.file.sha256, cmd.file.bucket)
            if not await self._may_command(held):
                await self._dispatch_failed(plan, MOVED_BEFORE_SENT)
                return
            await held.connection.print_job(
                PrintJob(
                    start_by=self._start_by(plan),
                    job_id=cmd.job_id,
                    file_kind=cmd.file.kind,
                    data=data,
                    plate=cmd.file.plate or "1",
                    material=MaterialRequirement(
                        cmd.material.type, cmd.material.color, cmd.material.profile, tuple(cmd.slots)
                    ),
                )
            )
        except CommandTimedOut:
            log.warning(
                "printer %s did not answer the start of job %s; the dispatch deadline decides",
                plan.printer_id,
                cmd.job_id,
            )
        except (PrinterCommandError, PartFileMissing) as exc:
            await self._dispatch_failed(plan, str(exc))
        except Exception as exc:
            log.exception("dispatch of job %s failed", cmd.job_id)
            await self._dispatch_failed(plan, f"dispatch failed: {exc}")
        finally:
            held.dispatching = False

    def _start_by(self, plan: DispatchPlan) -> float | None:
        """`PrintJob.start_by` for a dispatch: its deadline, less `START_MARGIN` of its time to start, so the
        printer can report the start before the deadline gives the job back (and the queue sends it elsewhere)."""
        if plan.start_deadline is None:
            return None
        left = (plan.start_deadline - self.clock()).total_seconds()
        return monotonic() + left - START_MARGIN * plan.command.deadline.total_seconds()

    async def _may_command(self, held: Held) -> bool:
        """Our heartbeat is surely alive, the printer still held by this `Held` (not let go meanwhile), and the
        lease still ours, asked of the bucket: a printer is never commanded by a replica a survivor may have
        taken it from, nor through a connection let go of. A lost lease is let go."""
        if not self.leases.presumed_alive() or self.held.get(held.lease.printer_id) is not held:
            return False
        if await self.leases.still_held(held.lease):
            return True
        log.warning("lease on printer %s was taken over; disconnecting", held.lease.printer_id)
        self._spawn(self._let_go(held.lease.printer_id, release=False), f"let-go-{held.lease.printer_id}")
        return False

    async def _dispatch_failed(self, plan: DispatchPlan, reason: str) -> None:
        log.warning("job %s not started on printer %s: %s", plan.command.job_id, plan.printer_id, reason)
        cmd = commands.DispatchFailed(plan.printer_id, plan.command.job_id, reason)
        await handlers.dispatch_failed(cmd, self.uow_factory(), self.deps)

    async def stop_job(self, printer_id: str) -> None:
        held = self.held.get(printer_id)
        if held is not None:
            await held.connection.stop_print()

    async def camera_snapshot(self, printer_id: str) -> bytes:
        """The printer camera's newest picture, from the replica that holds the printer (the access code
        stays there); raises `CameraUnavailable`."""
        held = self.held.get(printer_id)
        if held is not None:
            return await held.connection.camera_snapshot()
        owner = await self.owner_of(printer_id)
        if owner is None or owner == self.instance:
            raise CameraUnavailable("no gateway holds the printer's connection right now")
        try:
            reply = await self.leases.bus.nc.request(
                self.forward_subject(owner), printer_id.encode(), timeout=15, headers={CAMERA_REQUEST: "1"}
            )
        except (NoRespondersError, TimeoutError):
            raise CameraUnavailable(f"the gateway holding the printer ({owner}) does not answer") from None
        error = (reply.headers or {}).get(CAMERA_ERROR)
        if error is not None:
            raise CameraUnavailable(error)
        return bytes(reply.data)

    async def answer_camera(self, reply_to: str, printer_id: str) -> None:
        """Another replica asks for a picture of a printer this one holds."""
        headers: dict[str, str] | None = None
        data = b""
        try:
            if printer_id not in self.held:
                raise CameraUnavailable("the printer moved to another gateway; ask again")
            data = await self.held[printer_id].connection.camera_snapshot()
        except CameraUnavailable as exc:
            headers = {CAMERA_ERROR: str(exc).encode("ascii", "replace").decode().replace("\n", " ")[:500]}
        await self.leases.bus.nc.publish(reply_to, data, headers=headers)

    def forward_subject(self, owner: str) -> str:
        return GATEWAY_FORWARD_SUBJECT.format(instance=owner)

    async def forward(self, owner: str, envelope: Envelope) -> None:
        """Hand a command to the replica that owns the printer, and wait until it has recorded it.
        Raises `OwnerUnreachable` while the lease still names a replica that died: the message is
        redelivered until a survivor owns the printer."""
        try:
            reply = await self.leases.bus.nc.request(
                self.forward_subject(owner), envelope.model_dump_json().encode(), timeout=15
            )
        except NoRespondersError:
            raise OwnerUnreachable(f"owner {owner} of the printer does not answer (gone?)") from None
        if reply.data != b"ok":
            raise OwnerUnreachable(f"owner {owner} could not take the command: {reply.data[:200]!r}")
