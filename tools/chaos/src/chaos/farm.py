"""The farm as the chaos run touches it: the public API (an operator's clicks), the simulator's control
API (cables and power), signals to processes (`kill -9`), and NATS (duplicated and reordered messages)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import nats
from nats.js.errors import NotFoundError

from chaos.accounting import JobState, PrintStart
from chaos.plan import Action
from devstack import Stack, wait_until
from devstack.process import ManagedProcess
from printer_simulator.project import build_project

log = logging.getLogger("chaos")

API_ERRORS = (httpx.HTTPError, ValueError, KeyError)
"""What an API call does while its service is being killed: refused, timed out, a 5xx without JSON."""


@dataclass
class Counters:
    performed: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    retried: int = 0
    beds_cleared: int = 0

    def count(self, kind: str) -> None:
        self.performed[kind] = self.performed.get(kind, 0) + 1


class Farm:
    def __init__(self, stack: Stack, seed: int) -> None:
        assert stack.sim is not None, "the chaos run needs the simulator"
        self.stack = stack
        self.rng = random.Random(seed ^ 0x5EED)
        self.seed = seed
        self.api = httpx.AsyncClient(base_url=stack.api_url, headers=stack.api_headers, timeout=15, trust_env=False)
        self.control = httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30, trust_env=False)
        self.counters = Counters()
        self.background: set[asyncio.Task[Any]] = set()
        self.order_id = ""
        self.killed: dict[str, int] = {}

    async def close(self) -> None:
        for task in list(self.background):
            with contextlib.suppress(Exception):
                await task
        await self.api.aclose()
        await self.control.aclose()

    # ---- the order ------------------------------------------------------------------------------------

    async def place_order(self, jobs: int, print_minutes: int) -> str:
        """One SKU of one part, `jobs` copies, sent to the queue for any printer."""
        tag = uuid.uuid4().hex[:6].upper()
        part = await self._ok(self.api.post(
            "/api/v1/parts",
            files={"file": ("chaos.gcode.3mf", build_project(print_seconds=print_minutes * 60))},
            data={"name": f"Chaos part {tag}", "material_type": "PLA", "material_color": "#000000"},
        ))
        sku = await self._ok(self.api.post(
            "/api/v1/skus",
            json={"sku": f"CHAOS-{tag}", "name": "Chaos", "parts": [{"part_id": part["id"], "quantity": 1}]},
        ))
        order = await self._ok(self.api.post(
            "/api/v1/orders",
            json={"order_number": f"CHAOS-{self.seed}-{tag}", "line_items": [{"sku_id": sku["id"], "quantity": jobs}]},
        ))
        self.order_id = str(order["id"])
        await self._ok(self.api.post(
            f"/api/v1/orders/{self.order_id}/print-jobs", json={"assignment": {"mode": "next_available"}}
        ))
        return self.order_id

    async def _ok(self, call: Awaitable[httpx.Response]) -> dict[str, Any]:
        reply = await call
        if reply.status_code >= 300:
            raise RuntimeError(f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {reply.text}")
        body: dict[str, Any] = reply.json()
        return body

    async def jobs(self) -> list[JobState]:
        items: list[JobState] = []
        params: dict[str, Any] = {"order_id": self.order_id, "limit": 500}
        while True:
            page = await self._ok(self.api.get("/api/v1/jobs", params=params))
            items += [JobState(id=j["id"], status=j["status"]) for j in page["items"]]
            if not page.get("next_cursor"):
                return items
            params["cursor"] = page["next_cursor"]

    async def order(self) -> dict[str, Any]:
        return await self._ok(self.api.get(f"/api/v1/orders/{self.order_id}"))

    async def starts(self) -> list[PrintStart]:
        reply = await self.control.get("/starts")
        reply.raise_for_status()
        return [
            PrintStart(job_id=s["subtask_name"], serial=s["serial"], at=s["at"], outcome=s["outcome"])
            for s in reply.json()["starts"]
        ]

    async def dead_letters(self) -> int | None:
        with contextlib.suppress(*API_ERRORS):
            return len((await self._ok(self.api.get("/api/v1/dead-letters")))["items"])
        return None

    # ---- the operator ------------------------------------------------------------------------------

    async def operate(self) -> None:
        """What the operator does between faults: retry a failed job (a print the power cut), clear beds."""
        with contextlib.suppress(*API_ERRORS, RuntimeError):
            for job in await self.jobs():
                if job.status == "failed":
                    reply = await self.api.post(f"/api/v1/jobs/{job.id}/retry")
                    if reply.status_code == 200:
                        self.counters.retried += 1
        with contextlib.suppress(*API_ERRORS, RuntimeError):
            printers = (await self._ok(self.api.get("/api/v1/printers", params={"limit": 500})))["items"]
            for p in printers:
                if p["online"] and not p["bed_clear"] and not p["current_job_id"]:
                    reply = await self.api.post(f"/api/v1/printers/{p['id']}/bed-cleared")
                    if reply.status_code == 200:
                        self.counters.beds_cleared += 1

    async def all_printers_idle(self) -> bool:
        """Nothing printing, every printer online and back with its gateway: the farm has settled."""
        printers = (await self._ok(self.api.get("/api/v1/printers", params={"limit": 500})))["items"]
        return all(p["online"] and not p["current_job_id"] for p in printers)

    async def healthy(self) -> bool:
        with contextlib.suppress(*API_ERRORS):
            reply = await self.api.get("/api/v1/health", timeout=5)
            return bool(reply.status_code == 200 and reply.json()["status"] == "ok")
        return False

    # ---- faults ------------------------------------------------------------------------------------

    async def perform(self, action: Action) -> None:
        handlers: dict[str, Callable[[Action], Awaitable[None]]] = {
            "kill": self._kill,
            "restart_nats": self._restart_server,
            "restart_postgres": self._restart_server,
            "offline": self._offline,
            "power_cycle": self._power_cycle,
            "duplicate": self._duplicate,
            "reorder": self._reorder,
        }
        try:
            await handlers[action.kind](action)
        except Exception as exc:  # a fault that could not be applied is reported, not fatal
            log.warning("could not %s: %r", action.describe(), exc)
            self.counters.skipped.append(f"{action.describe()}: {exc!r}")
            return
        self.counters.count(action.kind)
        log.info("did %s", action.describe())

    async def _running(self, name: str, process: Callable[[], ManagedProcess | None]) -> int:
        """The pid of `name` once the supervisor has it running again: not the one killed last (a kill of
        a dead process, not yet reaped, kills nothing)."""

        async def pid() -> int | None:
            current = process()
            if current is None or current.pid is None or current.returncode is not None:
                return None
            if current.pid == self.killed.get(name) or self.stack.supervisor.status(name).state != "running":
                return None
            return current.pid

        running = cast(Callable[[], Awaitable[int]], pid)  # wait_until returns only a truthy pid
        found = await wait_until(running, 120, f"{name} to be running before the next fault", interval=0.1)
        self.killed[name] = found
        return found

    async def _kill(self, action: Action) -> None:
        pid = await self._running(action.target, lambda: self.stack.instance(action.target).process)
        os.kill(pid, signal.SIGKILL)

    async def _restart_server(self, action: Action) -> None:
        server = self.stack.nats if action.target == "nats" else self.stack.postgres
        if server is None:
            raise RuntimeError(f"{action.target} is external to this stack")
        pid = await self._running(action.target, lambda: server.process)
        graceful = signal.SIGTERM if action.target == "nats" else signal.SIGINT  # PostgreSQL's fast shutdown
        os.kill(pid, signal.SIGKILL if action.hard else graceful)

    async def _faults(self, serial: str, switches: dict[str, Any]) -> None:
        reply = await self.control.post(f"/printers/{serial}/faults", json=switches)
        reply.raise_for_status()

    async def _offline(self, action: Action) -> None:
        """The cable is pulled now and plugged back in `amount` seconds later (in the background)."""
        await self._faults(action.target, {"offline": True})

        async def plug_back() -> None:
            await asyncio.sleep(action.amount)  # the outage's length, not a wait for anything
            await self._faults(action.target, {"offline": False})

        self._spawn(plug_back())

    async def _power_cycle(self, action: Action) -> None:
        """Cut the power once a printer gateway is watching the printer. A print that finishes while no
        gateway watches and is then wiped by a power cut leaves no evidence it printed: it is reported
        failed, and only an operator looking at the bed could tell (the API has no "it did print")."""
        await wait_until(lambda: self._watched(action.target), 120, f"a gateway watching {action.target}", interval=0.2)
        self._spawn(self._faults(action.target, {"power_cycle": {"down_seconds": action.amount}}))

    async def _watched(self, serial: str) -> bool:
        replicas = [i for i in self.stack.instances.values() if i.spec.name == "printer_gateway"]
        if any(self.stack.supervisor.status(i.name).state != "running" for i in replicas):
            return False
        with contextlib.suppress(*API_ERRORS, RuntimeError):
            printers = (await self._ok(self.api.get("/api/v1/printers", params={"limit": 500})))["items"]
            return any(p.get("serial") == serial and p["online"] for p in printers)
        return False

    def _spawn(self, step: Awaitable[None]) -> None:
        async def logged() -> None:
            try:
                await step
            except Exception as exc:
                log.warning("a background fault step failed: %r", exc)
                self.counters.skipped.append(repr(exc))

        task = asyncio.ensure_future(logged())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def settle_faults(self) -> None:
        """Printers unplugged or without power are back before the run is judged."""
        for task in list(self.background):
            await task

    async def _duplicate(self, action: Action) -> None:
        """The newest messages of a stream again, under new `Nats-Msg-Id`s (a publisher retrying after the
        duplicate window): every consumer must skip them by its inbox."""
        await self._republish(action, newest=True)

    async def _reorder(self, action: Action) -> None:
        """Older messages of a stream again, newest of them first, after what followed them: consumers see
        stale state and commands late and out of order."""
        await self._republish(action, newest=False)

    async def _republish(self, action: Action, *, newest: bool) -> None:
        nc = await nats.connect(self.stack.nats_url, connect_timeout=5, max_reconnect_attempts=3)
        try:
            js = nc.jetstream(timeout=5)
            state = (await js.stream_info(action.target)).state
            last, first = int(state.last_seq), int(state.first_seq)
            if last == 0:
                return
            window = range(max(first, last - int(action.amount) + 1), last + 1) if newest else range(
                max(first, last - 200), max(first, last - 20) + 1
            )
            seqs = sorted(self.rng.sample(list(window), min(int(action.amount), len(window))), reverse=not newest)
            for seq in seqs:
                try:
                    msg = await js.get_msg(action.target, seq)
                except NotFoundError:
                    continue
                assert msg.subject is not None and msg.data is not None
                headers = {"Nats-Msg-Id": f"chaos:{self.seed}:{action.kind}:{action.target}:{seq}:{action.at}"}
                await js.publish(msg.subject, msg.data, headers=headers)
        finally:
            await nc.close()
