"""What the chaos run does and when, decided up front from a seed so a failing run can be replayed.

Pure: the plan is a list of timed actions; the adapters in `farm` carry them out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

ActionKind = Literal["kill", "restart_nats", "restart_postgres", "offline", "power_cycle", "duplicate", "reorder"]

SERVICE_INSTANCES = (
    "skus-1", "orders-1", "queue-1", "slicer-1", "printer_gateway-1", "printer_gateway-2", "api_gateway-1",
)
"""Every service process of the chaos stack, the second printer-gateway replica included."""

TAMPERED_STREAMS = ("ORDERS", "QUEUE", "PRINTERS")


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    target: str
    """An instance name (`queue-1`), `nats`/`postgres`, a printer serial, or a stream name."""
    at: float
    """Seconds after the order was sent to the queue."""
    amount: float = 0.0
    """Seconds off the network / without power, or how many messages to duplicate / reorder."""
    hard: bool = True
    """For server restarts: SIGKILL (True) or the server's own graceful shutdown signal."""

    def describe(self) -> str:
        extra = f" {self.amount:g}" if self.amount else ""
        how = "" if self.kind not in ("restart_nats", "restart_postgres") else (" -9" if self.hard else " graceful")
        return f"t+{self.at:.1f}s {self.kind}{how} {self.target}{extra}"


@dataclass(frozen=True)
class ChaosProfile:
    """How hard a run shakes the farm."""

    jobs: int
    printers: int
    kills_per_service: int
    server_restarts: int
    printer_faults: int
    tamperings: int
    min_gap: float
    max_gap: float

    @property
    def actions(self) -> int:
        return (
            self.kills_per_service * len(SERVICE_INSTANCES)
            + 2 * self.server_restarts
            + 2 * self.printer_faults
            + 2 * self.tamperings
        )


FULL = ChaosProfile(
    jobs=60, printers=8, kills_per_service=3, server_restarts=2, printer_faults=4, tamperings=4,
    min_gap=1.5, max_gap=5.0,
)
SHORT = ChaosProfile(
    jobs=16, printers=8, kills_per_service=1, server_restarts=1, printer_faults=1, tamperings=1,
    min_gap=1.0, max_gap=2.5,
)


def plan_chaos(seed: int, profile: ChaosProfile, printers: list[str]) -> list[Action]:
    """Every service killed `kills_per_service` times, NATS and PostgreSQL restarted, printers dropped and
    power-cycled, messages duplicated and reordered; in a seeded order with seeded gaps."""
    rng = random.Random(seed)
    todo: list[tuple[ActionKind, str, float, bool]] = []
    for instance in SERVICE_INSTANCES:
        todo += [("kill", instance, 0.0, True)] * profile.kills_per_service
    for _ in range(profile.server_restarts):
        todo.append(("restart_nats", "nats", 0.0, rng.random() < 0.5))
        todo.append(("restart_postgres", "postgres", 0.0, rng.random() < 0.5))
    for _ in range(profile.printer_faults):
        todo.append(("offline", rng.choice(printers), round(rng.uniform(2.0, 8.0), 1), True))
        todo.append(("power_cycle", rng.choice(printers), round(rng.uniform(0.5, 3.0), 1), True))
    for _ in range(profile.tamperings):
        todo.append(("duplicate", rng.choice(TAMPERED_STREAMS), float(rng.randint(5, 30)), True))
        todo.append(("reorder", rng.choice(TAMPERED_STREAMS), float(rng.randint(5, 30)), True))
    rng.shuffle(todo)
    actions, at = [], 0.0
    for kind, target, amount, hard in todo:
        at += rng.uniform(profile.min_gap, profile.max_gap)
        actions.append(Action(kind=kind, target=target, at=round(at, 2), amount=amount, hard=hard))
    return actions
