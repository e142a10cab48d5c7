"""Reconnect policy of the Bambu connection, with the network faked at the MQTT client boundary."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from printer_gateway.adapters.bambu.connection import (
    CERTIFICATE_REJECTED,
    WRONG_ACCESS_CODE,
    BambuConnection,
    BambuPrinterSettings,
    PrinterNotConnected,
)
from printer_gateway.domain.printer_status import PrinterStatus

SETTINGS = BambuPrinterSettings(serial="01S00C000000001", host="192.0.2.7", access_code="12345678")


class FakeSleep:
    """Records the waits between attempts; stops the loop after `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.waits: list[float] = []
        self.limit = limit
        self.done = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) >= self.limit:
            self.done.set()
            await asyncio.Event().wait()


async def run_attempts(
    monkeypatch: pytest.MonkeyPatch, fail: Callable[[], Exception], attempts: int
) -> tuple[list[float], list[PrinterStatus]]:
    async def refuse(self: aiomqtt.Client) -> aiomqtt.Client:
        raise fail()

    monkeypatch.setattr(aiomqtt.Client, "__aenter__", refuse)
    statuses: list[PrinterStatus] = []

    async def listener(status: PrinterStatus) -> None:
        statuses.append(status)

    sleep = FakeSleep(attempts)
    connection = BambuConnection(SETTINGS, listener, sleep=sleep)
    await connection.start()
    try:
        await asyncio.wait_for(sleep.done.wait(), 5)
    finally:
        await connection.close()
    return sleep.waits, statuses


@pytest.mark.parametrize(
    "rc",
    [
        5,
        4,
        ReasonCode(PacketTypes.CONNACK, "Not authorized"),
        ReasonCode(PacketTypes.CONNACK, "Bad user name or password"),
    ],
)
async def test_wrong_access_code_is_an_error_retried_slowly(monkeypatch: pytest.MonkeyPatch, rc: object) -> None:
    waits, statuses = await run_attempts(monkeypatch, lambda: aiomqtt.MqttCodeError(rc), 3)  # type: ignore[arg-type]
    assert waits == [SETTINGS.refused_retry_interval] * 3
    assert statuses == [PrinterStatus(online=False, state="error", error_reason=WRONG_ACCESS_CODE)]


async def test_unreachable_printer_backs_off_from_one_to_thirty_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    waits, statuses = await run_attempts(monkeypatch, lambda: aiomqtt.MqttError("[Errno 111] Connection refused"), 7)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert len(statuses) == 1
    assert statuses[0].state == "offline" and not statuses[0].online
    assert statuses[0].error_reason is not None and "Connection refused" in statuses[0].error_reason


async def test_certificate_failure_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    failure = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate"
    waits, statuses = await run_attempts(monkeypatch, lambda: aiomqtt.MqttError(failure), 2)
    assert waits == [SETTINGS.refused_retry_interval] * 2
    assert statuses == [PrinterStatus(online=False, state="error", error_reason=CERTIFICATE_REJECTED)]


async def test_commands_need_a_connection() -> None:
    async def listener(status: PrinterStatus) -> None:
        raise AssertionError("no status expected")

    connection = BambuConnection(SETTINGS, listener)
    with pytest.raises(PrinterNotConnected):
        await connection.pause()
    with pytest.raises(PrinterNotConnected):
        await connection.start_print("a.gcode.3mf", b"x", "1", [0], "job")


def test_access_code_stays_out_of_repr() -> None:
    assert "12345678" not in repr(SETTINGS)
