"""What the launcher starts and where: ports, folders and optional external servers."""

from __future__ import annotations

import dataclasses
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.errors import StackError
from devstack.ports import free_ports
from devstack.services import API_GATEWAY, SERVICES, service_spec
from devstack.supervisor import RestartPolicy

DEFAULT_NATS_PORT = 14222
DEFAULT_NATS_MONITOR_PORT = 18222
DEFAULT_SIMULATOR_CONTROL_PORT = 18085
EXTERNAL_DATABASE_PREFIX = "printfarm_"


def _default_service_ports() -> dict[str, int]:
    return {spec.name: spec.default_port for spec in SERVICES}


def default_ports() -> frozenset[int]:
    """What `make run` listens on unless told otherwise; tests never pick these."""
    return frozenset(
        [*_default_service_ports().values(), DEFAULT_NATS_PORT, DEFAULT_NATS_MONITOR_PORT,
         DEFAULT_SIMULATOR_CONTROL_PORT]
    )


def _all_services() -> tuple[str, ...]:
    return tuple(spec.name for spec in SERVICES)


@dataclass
class StackConfig:
    """Everything configurable about one dev stack; see ``from_env`` for the environment names."""

    data_dir: Path
    service_ports: dict[str, int] = field(default_factory=_default_service_ports)
    nats_port: int = DEFAULT_NATS_PORT
    nats_monitor_port: int = DEFAULT_NATS_MONITOR_PORT
    simulator_control_port: int = DEFAULT_SIMULATOR_CONTROL_PORT
    simulator_time_scale: float | None = None
    fleet: str = "default"
    log_level: str = "INFO"
    services: tuple[str, ...] = field(default_factory=_all_services)
    start_simulator: bool = True
    register_printers: bool = True
    nats_url: str | None = None
    database_urls: dict[str, str] = field(default_factory=dict)
    database_server_url: str | None = None
    database_prefix: str = ""
    drop_databases_on_stop: bool = False
    postgres_fsync: bool = True
    postgres_reuse_initdb: bool = False
    """Copy the first embedded cluster this process initialised instead of running initdb again (tests)."""
    python: str = sys.executable
    api_token: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 120.0
    stop_timeout: float = 10.0
    supervise: bool = True
    """Restart a child that dies without being asked to (with backoff) instead of leaving it dead."""
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.expanduser().absolute()
        self.services = tuple(service_spec(name).name for name in self.services)
        self.database_urls = {service_spec(k).name: v for k, v in self.database_urls.items()}
        missing = [spec.name for spec in SERVICES if spec.name not in self.service_ports]
        if missing:
            raise StackError(f"no port configured for {', '.join(missing)}")
        if self.register_printers and not (self.start_simulator and API_GATEWAY in self.services):
            self.register_printers = False

    @property
    def api_port(self) -> int:
        return self.service_ports[API_GATEWAY]

    def ports_to_bind(self) -> dict[str, int]:
        """The ports this stack will listen on itself (external servers are not ours to check)."""
        ports = {name: self.service_ports[name] for name in self.services}
        if self.nats_url is None:
            ports["nats"] = self.nats_port
            ports["nats monitor"] = self.nats_monitor_port
        if self.start_simulator:
            ports["simulator control"] = self.simulator_control_port
        return ports

    @classmethod
    def from_env(cls, environ: Mapping[str, str], data_dir: Path | None = None) -> StackConfig:
        """Read the launcher's settings from environment variables.

        ``PORT`` is the API gateway's port (as in the public API doc); ``<SERVICE>_PORT`` the
        others'; ``NATS_URL``, ``DATABASE_URL`` and ``<SERVICE>_DATABASE_URL`` switch to servers
        that already run instead of the embedded ones.
        """
        ports = _default_service_ports()
        for spec in SERVICES:
            variable = "PORT" if spec.name == API_GATEWAY else f"{spec.env_prefix}_PORT"
            ports[spec.name] = _int(environ, variable, ports[spec.name])
        server_url = environ.get("DATABASE_URL") or None
        default_prefix = EXTERNAL_DATABASE_PREFIX if server_url else ""
        return cls(
            data_dir=data_dir or Path(environ.get("DEVSTACK_DATA_DIR") or ".data"),
            service_ports=ports,
            nats_port=_int(environ, "NATS_PORT", DEFAULT_NATS_PORT),
            nats_monitor_port=_int(environ, "NATS_MONITOR_PORT", DEFAULT_NATS_MONITOR_PORT),
            simulator_control_port=_int(environ, "SIMULATOR_CONTROL_PORT", DEFAULT_SIMULATOR_CONTROL_PORT),
            simulator_time_scale=_float(environ, "SIMULATOR_TIME_SCALE"),
            fleet=environ.get("SIMULATOR_FLEET") or "default",
            log_level=environ.get("LOG_LEVEL") or "INFO",
            nats_url=environ.get("NATS_URL") or None,
            database_urls={
                spec.name: environ[f"{spec.env_prefix}_DATABASE_URL"]
                for spec in SERVICES
                if environ.get(f"{spec.env_prefix}_DATABASE_URL")
            },
            database_server_url=server_url,
            database_prefix=environ.get("DEVSTACK_DB_PREFIX", default_prefix),
            api_token=environ.get("API_TOKEN") or None,
            startup_timeout=_float(environ, "DEVSTACK_STARTUP_TIMEOUT") or 120.0,
        )

    @classmethod
    def for_tests(
        cls,
        data_dir: Path,
        environ: Mapping[str, str] | None = None,
        *,
        time_scale: float = 600.0,
        **overrides: Any,
    ) -> StackConfig:
        """A stack on free ports in ``data_dir``, safe to run beside a developer's ``make run``.

        External servers named in ``environ`` are honoured; databases created on an external
        server get a random prefix and are dropped on stop, so parallel runs never share data.
        """
        env = dict(environ or {})
        base = cls.from_env(
            {k: v for k, v in env.items() if k in _EXTERNAL_SERVER_VARIABLES}, data_dir=data_dir
        )
        ports = free_ports(len(SERVICES) + 3, avoid=default_ports())
        fields: dict[str, Any] = {
            "service_ports": {spec.name: ports[i] for i, spec in enumerate(SERVICES)},
            "nats_port": ports[-3],
            "nats_monitor_port": ports[-2],
            "simulator_control_port": ports[-1],
            "simulator_time_scale": time_scale,
            "log_level": env.get("LOG_LEVEL") or "INFO",
            "postgres_fsync": False,
            "postgres_reuse_initdb": True,
            "startup_timeout": 180.0,
        }
        if base.database_server_url:
            fields["database_prefix"] = f"printfarm_{secrets.token_hex(4)}_"
            fields["drop_databases_on_stop"] = True
        fields.update(overrides)
        return dataclasses.replace(base, **fields)


_EXTERNAL_SERVER_VARIABLES = frozenset(
    ["NATS_URL", "DATABASE_URL", *(f"{spec.env_prefix}_DATABASE_URL" for spec in SERVICES)]
)


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number") from None
    if not 0 < value < 65536:
        raise StackError(f"{name}={value} is not a port number")
    return value


def _float(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a number") from None
