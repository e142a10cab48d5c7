"""The Bambu LAN driver against simulated printers over real TLS MQTT and implicit FTPS."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from printer_gateway.adapters.bambu import ftps, tls
from printer_gateway.adapters.bambu.connection import (
    CERTIFICATE_REJECTED,
    WRONG_ACCESS_CODE,
    BambuConnection,
    BambuPrinterSettings,
    DeveloperModeOff,
)
from printer_gateway.adapters.bambu.protocol import MaterialRequirement, build_ams_mapping
from printer_gateway.adapters.bambu.report import DEVELOPER_MODE_OFF_REASON
from printer_gateway.adapters.bambu.tls import create_ssl_context
from printer_gateway.domain.lifecycle import (
    BedNoLongerClear,
    LifecycleEvent,
    PrintCancelled,
    PrintCompleted,
    PrintStarted,
    PrintTracker,
)
from printer_gateway.domain.printer_status import LoadedMaterial, PrinterStatus
from printer_simulator.catalog import MaterialSpec, parse_printer
from printer_simulator.fleet import Fleet
from printer_simulator.printer import SimulatedPrinter
from printer_simulator.project import build_project
from servicekit.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

WAIT = 10.0

X1C = {
    "name": "x1c",
    "serial": "00M09A350100001",
    "model": "X1C",
    "access_code": "11111111",
    "materials": [
        {"slot": 0, "type": "PLA", "color": "#000000", "profile": "GFA00", "remain_percent": 90},
        {"slot": 1, "type": "PLA", "color": "#FFFFFF", "profile": "GFA00", "remain_percent": 75},
        {"slot": 5, "type": "PETG", "color": "#C12E1F", "profile": "GFG00", "remain_percent": 60},
        {"slot": 128, "type": "PA-CF", "color": "#000000", "profile": "GFN04", "remain_percent": 100},
        {"slot": 254, "type": "TPU", "color": "#FFFFFF", "profile": "GFU01", "remain_percent": 95},
    ],
}
P1S = {
    "name": "p1s",
    "serial": "01P09A3A1900002",
    "model": "P1S",
    "access_code": "22222222",
    "prepare_seconds": 0.3,
    "materials": [
        {"slot": 0, "type": "PLA", "color": "#FFFFFF", "profile": "GFA00", "remain_percent": 80},
        {"slot": 2, "type": "PETG", "color": "#000000", "profile": "GFG00", "remain_percent": 55},
    ],
}
A1 = {
    "name": "a1",
    "serial": "03919A3B0100004",
    "model": "A1",
    "access_code": "44444444",
    "vt_tray_id": 255,
    "materials": [{"slot": 254, "type": "TPU", "color": "#FFFFFF", "profile": "GFU01"}],
}


@dataclass
class Recorder:
    """Collects every status the driver emits and lets a test wait for one with a deadline."""

    statuses: list[PrinterStatus] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, status: PrinterStatus) -> None:
        async with self.changed:
            self.statuses.append(status)
            self.changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[PrinterStatus], bool], timeout: float = WAIT, after: int = 0
    ) -> PrinterStatus:
        async def seen() -> PrinterStatus:
            async with self.changed:
                while True:
                    found = next((s for s in self.statuses[after:] if predicate(s)), None)
                    if found is not None:
                        return found
                    await self.changed.wait()

        try:
            return await asyncio.wait_for(seen(), timeout)
        except TimeoutError:
            last = self.statuses[-1] if self.statuses else None
            raise AssertionError(f"no matching status within {timeout} s; last: {last}") from None


@dataclass
class Harness:
    fleet: Fleet
    connections: list[BambuConnection] = field(default_factory=list)

    async def printer(self, spec: dict[str, Any]) -> SimulatedPrinter:
        return await self.fleet.add_printer(parse_printer(spec))

    async def connect(self, printer: SimulatedPrinter, **overrides: Any) -> tuple[BambuConnection, Recorder]:
        settings = BambuPrinterSettings(
            serial=printer.serial,
            host=printer.host,
            access_code=printer.spec.access_code,
            mqtt_port=printer.mqtt_port,
            ftp_port=printer.ftp_port,
            ca_pem=self.fleet.ca_pem,
            reconnect_initial=0.05,
            reconnect_max=0.2,
            refused_retry_interval=30.0,
            connect_timeout=5.0,
            command_timeout=5.0,
            upload_timeout=10.0,
        )
        recorder = Recorder()
        connection = BambuConnection(replace(settings, **overrides), recorder)
        self.connections.append(connection)
        await connection.start()
        return connection, recorder


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    fleet = Fleet(tmp_path / "sim", time_scale=600.0, report_interval=0.2)
    harness = Harness(fleet)
    try:
        yield harness
    finally:
        for connection in harness.connections:
            await connection.close()
        await fleet.stop()


def online(status: PrinterStatus) -> bool:
    return status.online and status.gcode_state is not None


def follow(tracker: PrintTracker, statuses: list[PrinterStatus]) -> tuple[PrintTracker, list[LifecycleEvent]]:
    events: list[LifecycleEvent] = []
    now = datetime.now(UTC)
    for status in statuses:
        tracker, step = tracker.observe(status, now)
        events.extend(step)
    return tracker, events


async def test_connect_reports_state_materials_and_version(harness: Harness) -> None:
    printer = await harness.printer(X1C)
    connection, recorder = await harness.connect(printer)
    status = await recorder.wait_for(online)
    assert status.state == "idle"
    assert status.gcode_state == "IDLE"
    assert status.materials == (
        LoadedMaterial(0, "PLA", "#000000", "GFA00", 90),
        LoadedMaterial(1, "PLA", "#FFFFFF", "GFA00", 75),
        LoadedMaterial(5, "PETG", "#C12E1F", "GFG00", 60),
        LoadedMaterial(128, "PA-CF", "#000000", "GFN04", 100),
        LoadedMaterial(254, "TPU", "#FFFFFF", "GFU01", 95),
    )
    await wait_until(lambda: connection.version_info is not None, WAIT, "the printer's version info")
    assert connection.version_info is not None
    assert any(module.get("sn") == X1C["serial"] for module in connection.version_info["module"])
    commands = [c["command"] for c in printer.snapshot()["commands"]]
    assert commands[:2] == ["pushall", "get_version"]


async def test_external_spool_with_id_255_is_slot_254(harness: Harness) -> None:
    printer = await harness.printer(A1)
    _, recorder = await harness.connect(printer)
    status = await recorder.wait_for(online)
    assert status.materials == (LoadedMaterial(254, "TPU", "#FFFFFF", "GFU01", 100),)


async def test_wrong_access_code_is_an_error_and_never_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    printer = await harness.printer(P1S)
    connection, recorder = await harness.connect(printer, access_code="90817263")
    status = await recorder.wait_for(lambda s: s.state == "error")
    assert status.error_reason == WRONG_ACCESS_CODE
    assert not status.online
    assert not connection.connected
    assert "90817263" not in caplog.text


async def test_certificate_from_another_ca_or_for_another_serial_is_rejected(harness: Harness) -> None:
    printer = await harness.printer(P1S)
    _, bambu_ca = await harness.connect(printer, ca_pem=None)
    _, other_serial = await harness.connect(printer, serial="01P09A3A1999999")
    for recorder in (bambu_ca, other_serial):
        status = await recorder.wait_for(lambda s: s.state == "error")
        assert status.error_reason == CERTIFICATE_REJECTED


async def test_printers_of_one_ca_share_one_mqtt_context_each_checked_against_its_own_serial(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the CAs into a context per printer was a millisecond each in a takeover of hundreds."""
    configured: list[ssl.SSLContext] = []
    configure = tls._configure

    def counted(context: ssl.SSLContext, ca_pem: str | None) -> None:
        configured.append(context)
        configure(context, ca_pem)

    monkeypatch.setattr(tls, "_configure", counted)
    tls.shared_ssl_context.cache_clear()
    p1s, x1c = await harness.printer(P1S), await harness.printer(X1C)
    recorders = [(await harness.connect(printer))[1] for printer in (p1s, x1c)]
    for recorder in recorders:
        await recorder.wait_for(online)
    _, swapped = await harness.connect(p1s, serial=x1c.serial)

    status = await swapped.wait_for(lambda s: s.state == "error")
    assert status.error_reason == CERTIFICATE_REJECTED
    assert len(configured) == 1


async def test_print_from_upload_to_finish_on_a_delta_reporting_printer(harness: Harness) -> None:
    printer = await harness.printer(P1S)
    printer.set_print_seconds(1.0)
    connection, recorder = await harness.connect(printer)
    idle = await recorder.wait_for(online)
    mapping = build_ams_mapping([MaterialRequirement("PETG", "#000000")], idle.materials, idle.tray_now)
    assert mapping == [2]
    tracker = PrintTracker("p1s", bed_clear=True).dispatch(
        "job-42", datetime.now(UTC), datetime.now(UTC) + timedelta(minutes=5)
    )
    mark = len(recorder.statuses)
    tracker, _ = follow(tracker, recorder.statuses)
    data = build_project(print_seconds=600, layers=20)

    await connection.start_print("job-42.gcode.3mf", data, "1", mapping, "job-42")

    assert printer.files["job-42.gcode.3mf"] == data
    sent = printer.snapshot()["job"]
    assert sent["subtask_name"] == "job-42"
    assert sent["ams_mapping"] == [2]
    assert sent["url"] == "ftp:///job-42.gcode.3mf"
    finished = await recorder.wait_for(lambda s: s.gcode_state == "FINISH", after=mark)
    assert finished.state == "finished"
    assert finished.progress_percent == 100
    assert finished.subtask_name == "job-42"
    seen_states = [s.gcode_state for s in recorder.statuses[mark:]]
    assert "RUNNING" in seen_states
    tracker, events = follow(tracker, recorder.statuses[mark:])
    kinds = [type(e) for e in events]
    assert kinds[0] is PrintStarted
    assert kinds[-2:] == [PrintCompleted, BedNoLongerClear]
    assert not tracker.bed_clear


async def test_stop_cancels_the_print(harness: Harness) -> None:
    printer = await harness.printer(P1S)
    printer.set_print_seconds(60.0)
    connection, recorder = await harness.connect(printer)
    await recorder.wait_for(online)
    tracker = PrintTracker("p1s", bed_clear=True).dispatch(
        "job-7", datetime.now(UTC), datetime.now(UTC) + timedelta(minutes=5)
    )
    mark = len(recorder.statuses)
    await connection.start_print("job-7.gcode.3mf", build_project(), "1", [0], "job-7")
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING", after=mark)

    await connection.pause()
    await recorder.wait_for(lambda s: s.gcode_state == "PAUSE", after=mark)
    await connection.resume()
    running_again = len(recorder.statuses)
    await recorder.wait_for(lambda s: s.gcode_state == "RUNNING", after=running_again - 1)
    await connection.stop_print()
    stopped = await recorder.wait_for(lambda s: s.print_error_code == "0300_400C", after=mark)
    assert stopped.gcode_state == "FAILED"
    await recorder.wait_for(lambda s: s.gcode_state == "IDLE", after=mark)
    tracker, events = follow(tracker, recorder.statuses[mark:])
    ended = [e for e in events if isinstance(e, PrintCancelled | PrintCompleted)]
    assert ended == [PrintCancelled("p1s", "job-7", "cancelled (print error 0300_400C)")]
    assert BedNoLongerClear("p1s", "job-7") in events


async def test_developer_mode_off_is_reported_with_its_reason(harness: Harness) -> None:
    printer = await harness.printer(P1S)
    printer.set_developer_mode(False)
    connection, recorder = await harness.connect(printer)
    await recorder.wait_for(online)

    with pytest.raises(DeveloperModeOff) as raised:
        await connection.start_print("job-9.gcode.3mf", build_project(), "1", [0], "job-9")
    assert raised.value.reason == DEVELOPER_MODE_OFF_REASON
    status = await recorder.wait_for(lambda s: s.state == "error")
    assert status.online
    assert status.error_reason == "developer mode off (LAN-only control disabled)"

    printer.set_developer_mode(True)
    mark = len(recorder.statuses)
    await connection.start_print("job-9.gcode.3mf", build_project(), "1", [0], "job-9")
    started = await recorder.wait_for(lambda s: s.subtask_name == "job-9", after=mark)
    assert started.state == "printing"
    assert started.error_reason is None


async def test_silent_printer_goes_offline_then_recovers(harness: Harness) -> None:
    printer = await harness.printer(X1C)
    _, recorder = await harness.connect(printer, stale_after=0.8)
    await recorder.wait_for(online)
    printer.set_silent(True)
    offline = await recorder.wait_for(lambda s: not s.online)
    assert offline.state == "offline"
    assert offline.error_reason is not None and "no report" in offline.error_reason
    mark = len(recorder.statuses)
    printer.set_silent(False)
    back = await recorder.wait_for(online, after=mark)
    assert back.state == "idle"


async def test_muted_reports_stop_at_the_printer_and_come_back_with_what_changed(harness: Harness) -> None:
    """What a takeover does to the printers a survivor already holds: the printer stops sending (unsubscribed), the
    session stays up and is not taken for stale, and unmuting brings a full report with what changed meanwhile."""
    printer = await harness.printer(P1S)
    connection, recorder = await harness.connect(printer, stale_after=0.8)
    await recorder.wait_for(online)

    await connection.mute_reports()
    await wait_until(lambda: printer.subscribers == 0, WAIT, "the printer to drop our subscription")
    sent = printer.reports_sent
    printer.set_materials((MaterialSpec(slot=0, type="PETG", color="C12E1FFF", profile="GFG00", remain_percent=40),))
    mark = len(recorder.statuses)
    with pytest.raises(AssertionError, match="no matching status"):
        await recorder.wait_for(lambda s: True, timeout=2.5 * 0.8, after=mark)  # nothing, not even "offline"
    assert printer.reports_sent == sent and printer.connected_clients == 1

    await connection.unmute_reports()
    back = await recorder.wait_for(lambda s: s.materials[:1] != () and s.materials[0].type == "PETG", after=mark)
    assert back.online and back.materials[0].remain_percent == 40

    await connection.mute_reports()
    await wait_until(lambda: printer.subscribers == 0, WAIT, "the printer to drop our subscription again")
    await connection.probe_control()  # its reply comes with the reports: the command unmutes first
    assert printer.subscribers == 1


async def test_a_full_report_asked_of_a_muted_printer_unmutes_it_with_one_pushall(harness: Harness) -> None:
    printer = await harness.printer(P1S)
    connection, recorder = await harness.connect(printer)
    await recorder.wait_for(online)
    await connection.mute_reports()
    await wait_until(lambda: printer.subscribers == 0, WAIT, "the printer to drop our subscription")

    def pushalls() -> int:
        return sum(1 for c in printer.commands if c["command"] == "pushall")

    asked = pushalls()
    await connection.request_full_report()
    await wait_until(lambda: printer.subscribers == 1 and pushalls() > asked, WAIT, "subscribed and asked")
    await connection.request_full_report()  # unmuted now: this one asks on its own
    await wait_until(lambda: pushalls() >= asked + 2, WAIT, "the second request")

    assert pushalls() == asked + 2, "one pushall per request, not two for the one that unmuted"


async def test_a_printer_whose_session_ended_while_muted_is_not_muted_again(harness: Harness) -> None:
    """A broker that drops a client for unsubscribing (not known of any, but not ruled out) must not make every
    takeover reconnect the survivor's printers: muting only saves CPU."""
    printer = await harness.printer(X1C)
    connection, recorder = await harness.connect(printer)
    await recorder.wait_for(online)
    await connection.mute_reports()
    await wait_until(lambda: printer.subscribers == 0, WAIT, "the printer to drop our subscription")
    printer.drop_connections()
    await recorder.wait_for(lambda s: not s.online)
    mark = len(recorder.statuses)
    await recorder.wait_for(online, after=mark)
    await wait_until(lambda: printer.subscribers == 1, WAIT, "subscribed by the new session")

    await connection.mute_reports()
    assert printer.subscribers == 1  # a mute sent would have had its UNSUBACK by now


async def test_dropped_connection_reconnects_and_asks_for_a_full_report(harness: Harness) -> None:
    printer = await harness.printer(P1S)
    connection, recorder = await harness.connect(printer)
    await recorder.wait_for(online)
    printer.drop_connections()
    await recorder.wait_for(lambda s: not s.online)
    mark = len(recorder.statuses)
    back = await recorder.wait_for(online, after=mark)
    assert back.materials[0] == LoadedMaterial(0, "PLA", "#FFFFFF", "GFA00", 80)
    assert connection.connected
    pushalls = [c for c in printer.snapshot()["commands"] if c["command"] == "pushall"]
    assert len(pushalls) >= 2


async def test_ftps_upload_resumes_the_tls_session_and_checks_the_size(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    printer = await harness.printer(P1S)
    context_reused: list[bool | None] = []
    original = ftps.ImplicitFtpTls.ntransfercmd

    def recording(
        self: ftps.ImplicitFtpTls, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = original(self, cmd, rest)
        assert isinstance(conn, ssl.SSLSocket)
        context_reused.append(conn.session_reused)
        return conn, size

    monkeypatch.setattr(ftps.ImplicitFtpTls, "ntransfercmd", recording)
    context = create_ssl_context(harness.fleet.ca_pem, printer.serial)
    payload = bytes(range(256)) * 4096
    await ftps.upload(
        host=printer.host,
        port=printer.ftp_port,
        access_code=printer.spec.access_code,
        file_name="big.gcode.3mf",
        data=payload,
        ssl_context=context,
        timeout=10,
    )
    assert printer.files["big.gcode.3mf"] == payload
    assert context_reused == [True]
    with pytest.raises(ftps.UploadFailed):
        await ftps.upload(
            host=printer.host,
            port=printer.ftp_port,
            access_code="wrong",
            file_name="x.gcode.3mf",
            data=b"x",
            ssl_context=context,
            timeout=10,
        )
