"""The gateway's side of the printers: holds leases, keeps one connection per owned printer, feeds
every status into the service layer and carries out dispatches once they are recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.envelope import Envelope
from contracts.printers.v1 import GATEWAY_FORWARD_SUBJECT
from contracts.queue.v1 import StartPrint
from printer_gateway.adapters.bambu.connection import (
    BambuConnection,
    BambuPrinterSettings,
    CommandTimedOut,
    PrinterCommandError,
)
from printer_gateway.adapters.bambu.protocol import MaterialRequirement, NoMatchingTray, build_ams_mapping
from printer_gateway.adapters.leases import Lease, LeaseTable, rendezvous_owner
from printer_gateway.adapters.part_files import PartFileMissing, PartFiles
from printer_gateway.adapters.repository import StaleLease
from printer_gateway.adapters.secrets import AccessCodeCipher
from printer_gateway.config import Settings
from printer_gateway.domain.printer_status import PrinterStatus
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.handlers import DispatchPlan
from printer_gateway.service_layer.unit_of_work import UnitOfWork
from servicekit.ids import Clock

log = logging.getLogger(__name__)


@dataclass
class Held:
    lease: Lease
    connection: BambuConnection
    connection_version: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_status: PrinterStatus | None = None
    dispatching: bool = False
    renewed_at: float = field(default_factory=time.monotonic)
    probed_at: float = 0.0


class Fleet:
    def __init__(
        self,
        settings: Settings,
        instance: str,
        uow_factory: Callable[[], UnitOfWork],
        leases: LeaseTable,
        cipher: AccessCodeCipher,
        part_files: PartFiles,
        clock: Clock,
    ) -> None:
        self.settings, self.instance, self.uow_factory = settings, instance, uow_factory
        self.leases, self.cipher, self.part_files, self.clock = leases, cipher, part_files, clock
        self.held: dict[str, Held] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    def owns(self, printer_id: str) -> bool:
        return printer_id in self.held

    async def owner_of(self, printer_id: str) -> str | None:
        return await self.leases.owner(printer_id)

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.leases.open()
        self._task = asyncio.create_task(self._run(), name="fleet-supervisor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for printer_id in list(self.held):
            await self._let_go(printer_id, release=True)
        await self.leases.leave()

    async def _run(self) -> None:
        while True:
            try:
                await self.supervise_once()
            except Exception:
                log.exception("fleet supervision pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.supervise_interval_seconds)
            self._wake.clear()

    async def supervise_once(self) -> None:
        """One pass: join/leave printers by rendezvous over the live replicas, renew due leases, and run
        the dispatch deadlines that fell due. A handful of queries per pass, whatever the fleet size."""
        await self.leases.heartbeat()
        replicas = await self.leases.live_replicas()
        now = self.clock()
        async with self.uow_factory() as uow:
            versions = await uow.printers.live_connection_versions()
            overdue = await uow.printers.dispatches_past_deadline(now)
        mine = {pid for pid in versions if rendezvous_owner(pid, replicas) == self.instance}
        keep: list[tuple[str, Held]] = []
        for printer_id, held in list(self.held.items()):
            gone = printer_id not in versions or versions[printer_id] != held.connection_version
            if gone or (printer_id not in mine and not held.dispatching):
                await self._let_go(printer_id, release=True)
            else:
                keep.append((printer_id, held))
        await self._renew_due(keep)
        for printer_id, held in keep:
            if printer_id in self.held and printer_id in overdue:
                await self._check_deadline(printer_id, held)
            if printer_id in self.held:
                await self._probe_if_refusing(held)
        for printer_id in sorted(mine - set(self.held)):
            lease = await self.leases.acquire(printer_id)
            if lease is not None:
                await self._take(printer_id, lease, versions[printer_id])

    async def _renew_due(self, held: list[tuple[str, Held]]) -> None:
        """Renew leases a third of a TTL old, concurrently: a large fleet must not renew one by one."""
        due_before = time.monotonic() - self.settings.lease_ttl_seconds / 3
        due = [(pid, h) for pid, h in held if h.renewed_at <= due_before]
        if not due:
            return
        results = await asyncio.gather(*(self.leases.renew(h.lease) for _, h in due), return_exceptions=True)
        for (printer_id, h), ok in zip(due, results, strict=True):
            if ok is True:
                h.renewed_at = time.monotonic()
            elif isinstance(ok, BaseException):
                log.warning("renewing the lease on printer %s failed: %r", printer_id, ok)
            else:
                log.warning("lease on printer %s lost; disconnecting", printer_id)
                await self._let_go(printer_id, release=False)

    async def _probe_if_refusing(self, held: Held) -> None:
        """A printer that refused control (developer mode off) is asked again now and then, so it
        leaves `error` once the operator fixed it; nothing else would send it a command."""
        status = held.connection.status
        if status is None or not held.connection.refusing_control or status.state != "error":
            return
        if time.monotonic() - held.probed_at < self.settings.control_probe_seconds:
            return
        held.probed_at = time.monotonic()
        task = asyncio.create_task(self._probe(held), name=f"probe-{held.lease.printer_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _probe(self, held: Held) -> None:
        with contextlib.suppress(PrinterCommandError):
            await held.connection.probe_control()

    async def _take(self, printer_id: str, lease: Lease, version: int) -> None:
        async with self.uow_factory() as uow:
            printer = await uow.printers.get(printer_id)
            if printer is None:
                await self.leases.release(lease)
                return
            access_code = self.cipher.decrypt(await uow.printers.access_code(printer_id))
        settings = BambuPrinterSettings(
            serial=printer.serial,
            host=printer.host,
            access_code=access_code,
            mqtt_port=printer.port,
            ftp_port=printer.ftp_port,
            ca_pem=printer.ca_cert,
            url_template=self.settings.bambu_url_template,
            stale_after=self.settings.stale_after_seconds,
        )

        async def on_status(status: PrinterStatus) -> None:
            await self._on_status(printer_id, status)

        connection = BambuConnection(settings, on_status)
        self.held[printer_id] = Held(lease, connection, version)
        log.info("took printer %s (%s) with lease epoch %s", printer.name, printer_id, lease.epoch)
        await connection.start()

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
            if status == held.last_status:
                return
            try:
                async with self.uow_factory() as uow:
                    await handlers.observe_status(printer_id, status, held.lease.epoch, self.instance, uow, self.clock)
                held.last_status = status
            except StaleLease:
                log.warning("printer %s was taken over by another replica", printer_id)
                await self._let_go(printer_id, release=False)

    async def _check_deadline(self, printer_id: str, held: Held) -> None:
        async with held.lock:
            try:
                async with self.uow_factory() as uow:
                    await handlers.check_deadline(printer_id, held.lease.epoch, uow, self.clock)
            except StaleLease:
                await self._let_go(printer_id, release=False)

    def launch(self, plan: DispatchPlan) -> None:
        """Upload and start in the background; the consumer that recorded the dispatch has committed."""
        held = self.held.get(plan.printer_id)
        if held is None:
            return
        held.dispatching = True
        task = asyncio.create_task(self._dispatch(plan, held), name=f"dispatch-{plan.command.job_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _dispatch(self, plan: DispatchPlan, held: Held) -> None:
        cmd: StartPrint = plan.command
        try:
            data = await self.part_files.fetch(cmd.file.sha256)
            status = held.connection.status
            loaded = status.materials if status else ()
            mapping = build_ams_mapping(
                [MaterialRequirement(cmd.material.type, cmd.material.color, cmd.material.profile)],
                loaded,
                status.tray_now if status else None,
            )
            await held.connection.start_print(
                file_name=f"{cmd.job_id}.gcode.3mf",
                data=data,
                plate=cmd.file.plate or "1",
                ams_mapping=mapping,
                subtask_name=cmd.job_id,
            )
        except CommandTimedOut:
            log.warning(
                "printer %s did not answer the start of job %s; the dispatch deadline decides",
                plan.printer_id,
                cmd.job_id,
            )
        except (PrinterCommandError, PartFileMissing, NoMatchingTray) as exc:
            await self._dispatch_failed(plan, str(exc))
        except Exception as exc:
            log.exception("dispatch of job %s failed", cmd.job_id)
            await self._dispatch_failed(plan, f"dispatch failed: {exc}")
        finally:
            held.dispatching = False

    async def _dispatch_failed(self, plan: DispatchPlan, reason: str) -> None:
        log.warning("job %s not started on printer %s: %s", plan.command.job_id, plan.printer_id, reason)
        async with self.uow_factory() as uow:
            await handlers.dispatch_failed(plan.printer_id, plan.command.job_id, reason, uow, self.clock)

    async def stop_job(self, printer_id: str) -> None:
        held = self.held.get(printer_id)
        if held is not None:
            await held.connection.stop_print()

    def forward_subject(self, owner: str) -> str:
        return GATEWAY_FORWARD_SUBJECT.format(instance=owner)

    async def forward(self, owner: str, envelope: Envelope) -> None:
        """Hand a command to the replica that owns the printer, and wait until it has recorded it."""
        reply = await self.leases.bus.nc.request(
            self.forward_subject(owner), envelope.model_dump_json().encode(), timeout=15
        )
        if reply.data != b"ok":
            raise RuntimeError(f"owner {owner} could not take the command: {reply.data[:200]!r}")
