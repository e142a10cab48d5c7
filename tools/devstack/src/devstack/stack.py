"""The whole printfarm stack as one object: used by `python -m devstack run` and by integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from devstack.config import StackConfig, default_ports
from devstack.errors import StackError
from devstack.nats_server import NatsServer
from devstack.ports import HOST, ensure_ports_usable, free_ports
from devstack.postgres import (
    EmbeddedPostgres,
    database_url,
    drop_databases,
    ensure_databases,
    redact,
    sqlalchemy_url,
)
from devstack.process import ManagedProcess
from devstack.registration import RegistrationReport, register_printers
from devstack.services import API_GATEWAY, GATEWAY_UPSTREAMS, SERVICES, ServiceSpec, service_spec
from devstack.simulator import Simulator, SimulatorInfo
from devstack.statefile import DataDirLock, remove_state, write_state
from devstack.supervisor import Supervised, Supervisor

LAUNCHER_LOG = "devstack.log"
SIMULATOR_DEFAULT_TIME_SCALE = 600.0
"""The simulator's own default (`printer_simulator --time-scale`)."""
API_TOKEN_FILE = "api_token"


@dataclass
class ServiceInstance:
    """One running copy of a service; a service can have several (``printer_gateway-2``)."""

    spec: ServiceSpec
    name: str
    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


class Stack:
    """Starts PostgreSQL, NATS, the simulator and the services; stops them in reverse order.

    Use as ``async with Stack(config) as stack:`` or call ``start()``/``stop()``.
    """

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.log_dir = self.data_dir / "logs"
        self.postgres: EmbeddedPostgres | None = None
        self.nats: NatsServer | None = None
        self.simulator: Simulator | None = None
        self.instances: dict[str, ServiceInstance] = {}
        self.database_urls: dict[str, str] = {}
        self.nats_url = ""
        self.sim: SimulatorInfo | None = None
        self.registration: RegistrationReport | None = None
        self.api_token = ""
        self._status = "starting"
        self._lock = DataDirLock(self.data_dir)
        self._database_server_url: str | None = None
        self._created_databases: list[str] = []
        self.supervisor = Supervisor(
            self._supervised, policy=config.restart_policy, on_change=lambda: self._write_state(self._status)
        )

    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.config.api_port}"

    @property
    def docs_url(self) -> str:
        return f"{self.api_url}/docs"

    @property
    def api_headers(self) -> dict[str, str]:
        """What a client sends to be let in by the gateway."""
        return {"Authorization": f"Bearer {self.api_token}"}

    @property
    def api_token_file(self) -> Path:
        return self.data_dir / API_TOKEN_FILE

    def service_url(self, name: str) -> str:
        """URL of the first instance of a service: the one the API gateway forwards to."""
        return f"http://{HOST}:{self.config.service_ports[service_spec(name).name]}"

    def instance(self, name: str) -> ServiceInstance:
        """An instance by its own name (``orders-2``) or a service's first instance by service name."""
        if name in self.instances:
            return self.instances[name]
        primary = f"{service_spec(name).name}-1"
        if primary in self.instances:
            return self.instances[primary]
        raise StackError(f"no instance {name!r}; running: {', '.join(self.instances) or 'none'}")

    def processes(self) -> Iterator[ManagedProcess]:
        for component in (self.postgres, self.nats, self.simulator):
            if component is not None and component.process is not None:
                yield component.process
        for instance in self.instances.values():
            yield instance.process

    async def start(self) -> None:
        """Start everything and register the printers; on any failure stop what started, then raise."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        ensure_ports_usable(self.config.ports_to_bind())
        self._clear_logs()
        self.api_token = self.config.api_token or self._stored_api_token()
        self._write_state("starting")
        timeout = self.config.startup_timeout
        await _together(self._start_databases(timeout), self._start_nats(timeout))
        await _together(
            self._start_simulator(timeout), *(self.start_service(name) for name in self.config.services)
        )
        if self.config.register_printers and self.sim is not None:
            async with httpx.AsyncClient(
                base_url=self.api_url, headers=self.api_headers, timeout=30, trust_env=False
            ) as client:
                self.registration = await register_printers(client, self.sim)
        self._status = "ready"
        self._write_state(self._status)
        if self.config.supervise:
            self.supervisor.start()

    async def stop(self) -> None:
        """Services first (the gateway before the rest), then the simulator, NATS and PostgreSQL.

        Each gets ``stop_timeout`` seconds after its stop signal, then it is killed.
        """
        await self.supervisor.stop()
        timeout = self.config.stop_timeout
        gateways = [i.process for i in self.instances.values() if i.spec.name == API_GATEWAY]
        others = [i.process for i in self.instances.values() if i.spec.name != API_GATEWAY]
        await asyncio.gather(*(p.stop(timeout) for p in gateways), return_exceptions=True)
        await asyncio.gather(*(p.stop(timeout) for p in others), return_exceptions=True)
        for component in (self.simulator, self.nats):
            if component is not None:
                await component.stop(timeout)
        if self.config.drop_databases_on_stop and self._database_server_url and self._created_databases:
            with contextlib.suppress(Exception):
                await drop_databases(self._database_server_url, self._created_databases)
        if self.postgres is not None:
            await self.postgres.stop(max(timeout, 20))
        if self._lock.held:
            remove_state(self.data_dir)
            self._lock.release()

    async def start_service(self, name: str, instance: str | None = None) -> ServiceInstance:
        """Start a service, or another instance of it (``instance="printer_gateway-2"``), and wait for /health.

        The first instance listens on the configured port; further ones on free ports.
        """
        spec = service_spec(name)
        instance = instance or self._next_instance_name(spec)
        previous = self.instances.get(instance)
        if previous is not None:
            if previous.process.running:
                raise StackError(f"{instance} is already running")
            await previous.process.stop(0)  # reap anything its process group left behind
        if previous is not None:
            port = previous.port
        elif instance == f"{spec.name}-1":
            port = self.config.service_ports[spec.name]
        else:
            ours = [*self.config.ports_to_bind().values(), *(i.port for i in self.instances.values())]
            port = free_ports(1, avoid={*default_ports(), *ours})[0]
        (self.data_dir / spec.name).mkdir(parents=True, exist_ok=True)
        process = ManagedProcess(
            instance,
            [self.config.python, "-m", spec.module],
            log_path=self.log_dir / f"{instance}.log",
            env=self._service_env(spec, instance, port),
        )
        started = ServiceInstance(spec, instance, port, process)
        self.instances[instance] = started
        await process.start()
        self.supervisor.notice()
        await self._wait_healthy(started)
        self._write_state(self._status)
        return started

    async def stop_service(self, name: str) -> int | None:
        """Stop an instance gracefully (deadline, then kill); returns its exit code."""
        return await self.instance(name).process.stop(self.config.stop_timeout)

    async def restart_service(self, name: str) -> ServiceInstance:
        found = self.instance(name)
        await found.process.stop(self.config.stop_timeout)
        return await self.start_service(found.spec.name, instance=found.name)

    async def kill_service(self, name: str, sig: int = signal.SIGKILL, *, wait: bool = True) -> int | None:
        """Send ``sig`` to an instance (a crash by default) and, unless ``wait`` is false, wait for it to exit."""
        process = self.instance(name).process
        process.stopping = True
        process.send_signal(sig)
        if wait and process.pid is not None:
            try:
                return await asyncio.wait_for(process.wait(), self.config.stop_timeout)
            except TimeoutError:
                raise StackError(f"{process.name} did not exit after signal {sig}") from None
        return process.returncode

    async def restart_postgres(self) -> None:
        """Stop and start the embedded PostgreSQL on the same data (services see dropped connections)."""
        if self.postgres is None:
            raise StackError("PostgreSQL is external to this stack")
        await self.postgres.stop(max(self.config.stop_timeout, 20))
        await self.postgres.start(self.config.startup_timeout)
        self.supervisor.notice()

    def _supervised(self) -> Iterator[Supervised]:
        """Everything the supervisor keeps alive, each with how it is started again (ready, or raise)."""
        timeout = self.config.startup_timeout
        postgres, nats, simulator = self.postgres, self.nats, self.simulator
        if postgres is not None:
            yield Supervised("postgres", lambda: postgres.process, lambda: postgres.restart(timeout))
        if nats is not None:
            yield Supervised("nats", lambda: nats.process, lambda: nats.restart(timeout))
        if simulator is not None:
            yield Supervised("simulator", lambda: simulator.process, self._restart_simulator)
        for name in list(self.instances):
            yield Supervised(name, partial(self._instance_process, name), partial(self._restart_instance, name))

    def _instance_process(self, name: str) -> ManagedProcess:
        return self.instances[name].process

    async def _restart_instance(self, name: str) -> None:
        await self.start_service(self.instances[name].spec.name, instance=name)

    async def _restart_simulator(self) -> None:
        assert self.simulator is not None
        self.sim = await self.simulator.restart(self.config.startup_timeout)

    def state(self, status: str) -> dict[str, Any]:
        """What `status` and the start-up summary show; database passwords are masked."""
        processes: dict[str, dict[str, Any]] = {}
        for process in self.processes():
            processes[process.name] = {
                "pid": process.pid, "log": str(process.log_path),
                **self.supervisor.status(process.name).as_dict(),
            }
        for instance in self.instances.values():
            processes[instance.name]["url"] = instance.url
        return {
            "status": status,
            "degraded": self.supervisor.degraded,
            "pid": os.getpid(),
            "data_dir": str(self.data_dir),
            "log_dir": str(self.log_dir),
            "api_url": self.api_url,
            "docs_url": self.docs_url,
            "api_token_file": str(self.api_token_file),
            "nats_url": self.nats_url,
            "nats_monitor_url": self.nats.monitor_url if self.nats else None,
            "postgres_socket_dir": str(self.postgres.socket_dir) if self.postgres else None,
            "database_urls": {name: redact(url) for name, url in self.database_urls.items()},
            "simulator": {
                "control_url": self.sim.control_url,
                "printers": [p.name for p in self.sim.printers],
            } if self.sim else None,
            "registered": list(self.registration.created) if self.registration else [],
            "processes": processes,
        }

    def _write_state(self, status: str) -> None:
        write_state(self.data_dir, self.state(status))

    def _stored_api_token(self) -> str:
        """The gateway's launcher token: made once per data folder (owner-only), so scripts keep working."""
        try:
            return self.api_token_file.read_text().strip()
        except FileNotFoundError:
            token = secrets.token_urlsafe(32)
            fd = os.open(self.api_token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(token + "\n")
            return token

    def _clear_logs(self) -> None:
        """Each launch starts with empty logs, so a failure shows this run's lines only."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for log in self.log_dir.glob("*.log"):
            if log.name != LAUNCHER_LOG:
                log.unlink()

    def _next_instance_name(self, spec: ServiceSpec) -> str:
        number = 1
        while f"{spec.name}-{number}" in self.instances:
            number += 1
        return f"{spec.name}-{number}"

    def _child_env(self, **values: str) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": self.config.log_level,
                "LOG_FORMAT": os.environ.get("LOG_FORMAT") or "text", **values, **self.config.extra_env}

    def _service_env(self, spec: ServiceSpec, instance: str, port: int) -> dict[str, str]:
        values = {
            "HOST": HOST,
            "PORT": str(port),
            "DATABASE_URL": self.database_urls[spec.name],
            "NATS_URL": self.nats_url,
            "DATA_DIR": str(self.data_dir / spec.name),
            "SERVICE_INSTANCE": instance,
        }
        if spec.name == "queue" and self.config.start_simulator:
            # The queue forecasts in real time: the simulated printers print `time_scale` times faster.
            values["FORECAST_TIME_SCALE"] = f"{self.config.simulator_time_scale or SIMULATOR_DEFAULT_TIME_SCALE:g}"
        if spec.name == API_GATEWAY:
            values.update({variable: self.service_url(name) for name, variable in GATEWAY_UPSTREAMS.items()})
            values["API_TOKEN"] = self.api_token
            values["HEALTH_PROBES"] = json.dumps(self._health_probes())
            # A local farm sends webhooks only to receivers on this machine unless told otherwise.
            values["WEBHOOK_ALLOWED_HOSTS"] = os.environ.get("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1,localhost,::1")
        return self._child_env(**values)

    def _health_probes(self) -> dict[str, str]:
        """The parts without a service of their own that `/api/v1/health` asks too, so their outage shows."""
        probes = {}
        if self.nats is not None:
            probes["nats"] = f"{self.nats.monitor_url}/healthz"
        if self.config.start_simulator:
            probes["simulator"] = f"http://{HOST}:{self.config.simulator_control_port}/health"
        return probes

    async def _start_databases(self, timeout: float) -> None:
        """Each service gets its own database: given by URL, or created on an external or embedded server."""
        self.database_urls = {name: sqlalchemy_url(url) for name, url in self.config.database_urls.items()}
        needed = [spec for spec in SERVICES if spec.name not in self.database_urls]
        if not needed:
            return
        if self.config.database_server_url:
            server = self.config.database_server_url
        else:
            self.postgres = EmbeddedPostgres(
                self.data_dir / "pg", self.log_dir / "postgres.log", fsync=self.config.postgres_fsync,
                reuse_initdb=self.config.postgres_reuse_initdb,
            )
            await self.postgres.start(timeout)
            server = self.postgres.server_url
        names = {spec.name: self.config.database_prefix + spec.database for spec in needed}
        self._database_server_url = server
        self._created_databases = list(names.values())
        await ensure_databases(server, names.values())
        self.database_urls.update({name: database_url(server, db) for name, db in names.items()})

    async def _start_nats(self, timeout: float) -> None:
        if self.config.nats_url:
            self.nats_url = self.config.nats_url
            return
        self.nats = NatsServer(
            self.config.nats_port, self.config.nats_monitor_port, self.data_dir / "nats", self.log_dir / "nats.log"
        )
        await self.nats.start(timeout)
        self.nats_url = self.nats.url

    async def _start_simulator(self, timeout: float) -> None:
        if not self.config.start_simulator:
            return
        self.simulator = Simulator(
            python=self.config.python,
            fleet=self.config.fleet,
            control_port=self.config.simulator_control_port,
            state_dir=self.data_dir / "simulator" / "state",
            out_file=self.data_dir / "simulator" / "fleet.json",
            log_path=self.log_dir / "simulator.log",
            time_scale=self.config.simulator_time_scale,
            log_level=self.config.log_level,
            env=self._child_env(),
        )
        self.sim = await self.simulator.start(timeout)

    async def _wait_healthy(self, instance: ServiceInstance) -> None:
        async def healthy(client: httpx.AsyncClient) -> bool:
            try:
                response = await client.get(f"{instance.url}/health")
            except httpx.TransportError:
                return False
            return response.status_code == 200

        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
            await instance.process.wait_ready(
                lambda: healthy(client), self.config.startup_timeout, f"{instance.name} to answer GET /health"
            )


async def _together(*steps: Coroutine[Any, Any, Any]) -> None:
    """Run steps concurrently; the first failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for step in steps:
                group.create_task(step)
    except BaseExceptionGroup as failed:
        first = next((e for e in failed.exceptions if not isinstance(e, asyncio.CancelledError)), failed)
        raise first from None
