"""Printer utilisation from recorded state changes: each change lasts until the next, clipped to the window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from printer_gateway_fakes import GatewayState, InMemoryUnitOfWork

from printer_gateway.domain.commands import ObserveStatus, ObserveStatuses
from printer_gateway.domain.lifecycle import PrintTracker
from printer_gateway.domain.model import Printer
from printer_gateway.domain.printer_status import PrinterStatus
from printer_gateway.domain.utilisation import (
    STATES,
    StateChange,
    state_seconds,
    utilisation_percent,
    utilisation_state,
)
from printer_gateway.service_layer import handlers
from printer_gateway.service_layer.handlers import Deps

T0 = datetime(2026, 3, 10, tzinfo=UTC)
H = timedelta(hours=1)


def test_status_maps_to_utilisation_state() -> None:
    assert utilisation_state(PrinterStatus(online=True, state="printing")) == "printing"
    assert utilisation_state(PrinterStatus(online=True, state="paused")) == "paused"
    assert utilisation_state(PrinterStatus(online=True, state="error")) == "error"
    assert utilisation_state(PrinterStatus(online=True, state="finished")) == "idle"
    assert utilisation_state(PrinterStatus(online=True, state="idle")) == "idle"
    assert utilisation_state(PrinterStatus(online=False, state="printing")) == "offline"
    assert utilisation_state(PrinterStatus.offline("gone")) == "offline"


def test_each_change_lasts_until_the_next_and_the_window_starts_in_the_last_state_before_it() -> None:
    since, until = T0, T0 + 10 * H
    changes = [
        StateChange("p1", "idle", T0 - 5 * H),
        StateChange("p1", "printing", T0 + 1 * H),
        StateChange("p1", "error", T0 + 4 * H),
        StateChange("p1", "idle", T0 + 5 * H),
        StateChange("p2", "offline", T0 + 8 * H),
    ]
    seconds = state_seconds(changes, since, until)
    assert seconds["p1"] == {"printing": 3 * 3600, "paused": 0, "idle": 6 * 3600, "error": 3600, "offline": 0}
    assert seconds["p2"]["offline"] == 2 * 3600 and sum(seconds["p2"].values()) == 2 * 3600
    assert utilisation_percent(seconds["p1"]) == 30.0
    assert utilisation_percent(dict.fromkeys(STATES, 0.0)) is None


def test_changes_after_the_window_do_not_count_and_order_of_input_does_not_matter() -> None:
    changes = [
        StateChange("p", "printing", T0 + 2 * H),
        StateChange("p", "idle", T0),
        StateChange("p", "error", T0 + 20 * H),
    ]
    seconds = state_seconds(changes, T0, T0 + 4 * H)
    assert seconds["p"]["printing"] == 2 * 3600 and seconds["p"]["idle"] == 2 * 3600 and seconds["p"]["error"] == 0


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(STATES), st.integers(-100_000, 100_000)), max_size=30
    )
)
def test_no_printer_has_more_time_than_the_window(raw: list[tuple[str, str, int]]) -> None:
    since, until = T0, T0 + 24 * H
    changes = [StateChange(p, s, T0 + timedelta(seconds=at)) for p, s, at in raw]  # type: ignore[arg-type]
    for printer_id, spent in state_seconds(changes, since, until).items():
        assert all(v >= 0 for v in spent.values())
        first = min(c.at for c in changes if c.printer_id == printer_id)
        known = (until - max(first, since)).total_seconds() if first < until else 0.0
        assert abs(sum(spent.values()) - known) < 1e-6


async def test_the_gateway_records_a_state_only_when_the_utilisation_state_changes() -> None:
    printer = Printer(
        id="p1", name="p", model="P1S", protocol="bambu_lan", host="127.0.0.1", port=8883, ftp_port=990,
        serial="S1", tags=[], fabmatic=False, ca_cert=None, created_at=T0, updated_at=T0,
        tracker=PrintTracker(printer_id="p1", bed_clear=True), status=PrinterStatus.offline("not connected yet"),
    )
    uow = InMemoryUnitOfWork(GatewayState(printers={"p1": printer}))
    idle = PrinterStatus(online=True, state="idle", gcode_state="IDLE")
    running = PrinterStatus(online=True, state="printing", gcode_state="RUNNING", progress_percent=5)
    reports = (idle, idle, running, replace(running, progress_percent=50), PrinterStatus.offline("gone"))
    for minute, status in enumerate(reports):
        now = T0 + timedelta(minutes=minute)
        deps = Deps(clock=lambda now=now: now, cipher=None)  # type: ignore[arg-type, misc]
        report = ObserveStatuses((ObserveStatus("p1", status, 1, "gw-1"),))
        assert await handlers.observe_statuses(report, uow, deps) == frozenset()  # type: ignore[arg-type]
    assert uow.commits == len(reports)
    assert [(change.state, change.at) for change in uow.state.states] == [
        ("idle", T0),
        ("printing", T0 + timedelta(minutes=2)),
        ("offline", T0 + timedelta(minutes=4)),
    ]
