"""Local dev stack launcher: embedded PostgreSQL and NATS, the printer simulator and every service."""

from devstack.config import StackConfig
from devstack.errors import StackError
from devstack.services import SERVICES, ServiceSpec
from devstack.simulator import SimPrinter, SimulatorInfo
from devstack.stack import ServiceInstance, Stack
from devstack.waiting import wait_until

__all__ = [
    "SERVICES",
    "ServiceInstance",
    "ServiceSpec",
    "SimPrinter",
    "SimulatorInfo",
    "Stack",
    "StackConfig",
    "StackError",
    "wait_until",
]
