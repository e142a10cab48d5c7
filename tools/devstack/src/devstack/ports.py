"""Choosing TCP ports on 127.0.0.1 and checking that configured ones are free before anything starts."""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Collection, Mapping
from pathlib import Path

from devstack.errors import StackError

HOST = "127.0.0.1"


def ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (and to ``bind(0)``)."""
    try:
        low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_ports(count: int, avoid: Collection[int] = ()) -> list[int]:
    """``count`` distinct ports that are free now, chosen at random outside the ephemeral range.

    A port from ``bind(0)`` is an ephemeral one: between closing it and the service binding it,
    any outgoing connection on the machine may take it.
    """
    ephemeral = ephemeral_ports()
    unwanted = set(avoid)
    candidates = [p for p in range(10000, 65536) if p not in ephemeral and p not in unwanted]
    random.shuffle(candidates)
    ports: list[int] = []
    with contextlib.ExitStack() as held:
        for port in candidates:
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
    raise StackError(f"could not find {count} free ports on {HOST}")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def ensure_ports_usable(ports: Mapping[str, int]) -> None:
    """Fail fast, naming the owner, when two components share a port or a port is taken."""
    seen: dict[int, str] = {}
    for owner, port in ports.items():
        if port in seen:
            raise StackError(f"port {port} is configured for both {seen[port]} and {owner}")
        seen[port] = owner
    busy = [f"{owner} ({port})" for owner, port in ports.items() if not port_is_free(port)]
    if busy:
        raise StackError(
            "ports already in use on 127.0.0.1: " + ", ".join(busy)
            + " — is another dev stack running? Change them with the environment or CLI options."
        )
