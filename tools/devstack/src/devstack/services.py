"""The printfarm services the launcher knows: how each is started, its database and its default port."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.errors import StackError


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    database: str
    default_port: int

    @property
    def env_prefix(self) -> str:
        """Prefix of this service's launcher settings: ``ORDERS_PORT``, ``ORDERS_DATABASE_URL``."""
        return self.name.upper()


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("skus", "skus", "skus", 18081),
    ServiceSpec("orders", "orders", "orders", 18082),
    ServiceSpec("queue", "printqueue", "queue", 18083),
    ServiceSpec("printer_gateway", "printer_gateway", "printer_gateway", 18084),
    ServiceSpec("slicer", "slicer", "slicer", 18086),
    ServiceSpec("api_gateway", "api_gateway", "api_gateway", 8080),
)
API_GATEWAY = "api_gateway"

# The API gateway is told where each service it forwards to listens.
GATEWAY_UPSTREAMS: dict[str, str] = {
    "skus": "SKUS_URL",
    "orders": "ORDERS_URL",
    "queue": "QUEUE_URL",
    "printer_gateway": "PRINTER_GATEWAY_URL",
    "slicer": "SLICER_URL",
}


def service_spec(name: str) -> ServiceSpec:
    """Look a service up by its name, its module or its folder name (``printer-gateway``)."""
    wanted = name.replace("-", "_")
    for spec in SERVICES:
        if wanted in (spec.name, spec.module):
            return spec
    known = ", ".join(spec.name for spec in SERVICES)
    raise StackError(f"unknown service {name!r}; known: {known}")
