"""What a test can make go wrong with a simulated Bambu printer: the switches that stay until changed, and the
control API's fault request read into calls on the printer. Kept apart from what a working printer does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from printer_simulator.lifecycle import HMS_FILAMENT_RUNOUT, PRINT_ERROR_FILAMENT_RUNOUT, PRINT_ERROR_REFUSED

if TYPE_CHECKING:
    from printer_simulator.printer import SimulatedPrinter

FAULT_KEYS = frozenset(
    {
        "developer_mode",
        "silent",
        "slow_prepare_seconds",
        "print_seconds",
        "refuse_next_job",
        "hms_pause",
        "resume",
        "finish_now",
        "drop_connections",
        "offline",
        "power_cycle",
    }
)


class FaultError(ValueError):
    """A fault request the simulator cannot apply (unknown switch, bad value)."""


@dataclass
class FaultSwitches:
    """Switches that stay until changed; one-shot actions (drop, power cycle) are methods."""

    developer_mode: bool = True
    silent: bool = False
    offline: bool = False
    refuse_next_job: int | None = None  # print_error to fail the next job with in PREPARE
    hms_pause_at: float | None = None  # armed: pause at this mc_percent of the current/next print
    hms_print_error: int = PRINT_ERROR_FILAMENT_RUNOUT
    hms_entries: list[dict[str, int]] = field(default_factory=lambda: [dict(HMS_FILAMENT_RUNOUT)])
    slow_prepare_seconds: float | None = None
    print_seconds: float | None = None  # real seconds per print, overriding file and time scale

    def take_hms_pause_at(self) -> float | None:
        """The run-out armed for the next print, disarmed here because that print takes it."""
        at, self.hms_pause_at = self.hms_pause_at, None
        return at

    def run_out(self) -> tuple[int, list[dict[str, int]]]:
        """What a run-out shows when it pauses a print: the switches as they are then."""
        return self.hms_print_error, self.hms_entries


async def apply_fault_request(printer: SimulatedPrinter, changes: Mapping[str, Any]) -> None:
    """Applies a fault request (the control API's body); raises FaultError on anything unknown."""
    unknown = set(changes) - FAULT_KEYS
    if unknown:
        raise FaultError(f"unknown fault switches: {sorted(unknown)}; known: {sorted(FAULT_KEYS)}")
    try:
        await _apply(printer, changes)
    except (TypeError, ValueError) as exc:
        raise FaultError(str(exc)) from exc


async def _apply(printer: SimulatedPrinter, changes: Mapping[str, Any]) -> None:
    if "developer_mode" in changes:
        printer.set_developer_mode(as_bool(changes["developer_mode"]))
    if "silent" in changes:
        printer.set_silent(as_bool(changes["silent"]))
    if "slow_prepare_seconds" in changes:
        printer.set_slow_prepare(as_seconds(changes["slow_prepare_seconds"]))
    if "print_seconds" in changes:
        printer.set_print_seconds(as_seconds(changes["print_seconds"]))
    if "refuse_next_job" in changes:
        value = changes["refuse_next_job"]
        if isinstance(value, bool) or value is None:
            printer.refuse_next_job(PRINT_ERROR_REFUSED if value else None)
        else:
            printer.refuse_next_job(int(value))
    if "hms_pause" in changes:
        value = changes["hms_pause"]
        if isinstance(value, Mapping):
            printer.hms_pause(
                at_percent=float(value["at_percent"]) if value.get("at_percent") is not None else None,
                print_error=int(value.get("print_error", PRINT_ERROR_FILAMENT_RUNOUT)),
                hms=[{"attr": int(e["attr"]), "code": int(e["code"])} for e in value["hms"]]
                if value.get("hms")
                else None,
            )
        elif as_bool(value):
            printer.hms_pause()
        else:
            printer.clear_hms_pause()
    if changes.get("resume"):
        printer.resume()
    if changes.get("finish_now"):
        printer.finish_now()
    if changes.get("drop_connections"):
        printer.drop_connections()
    if "offline" in changes:
        if as_bool(changes["offline"]):
            await printer.go_offline()
        else:
            await printer.go_online()
    if changes.get("power_cycle"):
        value = changes["power_cycle"]
        down = float(value.get("down_seconds", 0.5)) if isinstance(value, Mapping) else 0.5
        await printer.power_cycle(down)


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {value!r}")


def as_seconds(value: Any) -> float | None:
    if value is None or value is False:
        return None
    seconds = float(value)
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    return seconds
