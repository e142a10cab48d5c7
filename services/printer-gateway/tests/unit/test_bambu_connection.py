"""Reconnect policy of the Bambu connection, with the network faked at the MQTT client boundary."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator

import aiomqtt
import pytest
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from printer_gateway.adapters import driver as driver_module
from printer_gateway.adapters.bambu import connection as connection_module
from printer_gateway.adapters.bambu.connection import (
    CERTIFICATE_REJECTED,
    WRONG_ACCESS_CODE,
    BambuConnection,
    BambuPrinterSettings,
    PrinterNotConnected,
    _PendingCommand,
)
from printer_gateway.adapters.driver import UploadError
from printer_gateway.domain.printer_status import PrinterStatus
from servicekit.testing import wait_until

SETTINGS = BambuPrinterSettings(serial="01S00C000000001", host="192.0.2.7", access_code="12345678")


@pytest.fixture(autouse=True)
def no_tls_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The network is faked at the MQTT client: the TLS connection opened before it is a socket connected nowhere."""
    opened: list[socket.socket] = []

    async def open_tls_socket(host: str, port: int, context: object) -> socket.socket:
        opened.append(socket.socket())
        return opened[-1]

    monkeypatch.setattr(connection_module, "open_tls_socket", open_tls_socket)
    yield
    for sock in opened:
        sock.close()


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


async def test_a_failed_attempt_ends_the_first_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: aiomqtt.Client) -> aiomqtt.Client:
        raise aiomqtt.MqttError("[Errno 111] Connection refused")

    async def listener(status: PrinterStatus) -> None:
        return None

    monkeypatch.setattr(aiomqtt.Client, "__aenter__", refuse)
    connection = BambuConnection(SETTINGS, listener, sleep=FakeSleep(1))
    await connection.start()
    try:
        await asyncio.wait_for(connection.attempted.wait(), 5)
    finally:
        await connection.close()


async def test_a_session_subscribes_and_asks_for_a_full_report_without_waiting_for_each_ack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first attempt is over once the session is open, before any status; the subscription, the full
    report request and the version request all go out before the first acknowledgement comes back."""
    sent: list[str] = []
    acknowledged = asyncio.Event()

    async def connect(self: aiomqtt.Client) -> aiomqtt.Client:
        return self

    async def disconnect(self: aiomqtt.Client, *_: object) -> None:
        return None

    async def subscribe(self: aiomqtt.Client, topic: str, *_: object, **__: object) -> None:
        sent.append(f"subscribe {topic}")
        await acknowledged.wait()

    async def publish(self: aiomqtt.Client, topic: str, payload: str, *_: object, **__: object) -> None:
        sent.append(next(iter(json.loads(payload).values()))["command"])
        await acknowledged.wait()

    async def no_messages() -> aiomqtt.Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    class Silent:
        def __aiter__(self) -> Silent:
            return self

        def __anext__(self) -> object:
            return no_messages()

    monkeypatch.setattr(aiomqtt.Client, "__aenter__", connect)
    monkeypatch.setattr(aiomqtt.Client, "__aexit__", disconnect)
    monkeypatch.setattr(aiomqtt.Client, "subscribe", subscribe)
    monkeypatch.setattr(aiomqtt.Client, "publish", publish)
    monkeypatch.setattr(aiomqtt.Client, "messages", property(lambda self: Silent()))
    statuses: list[PrinterStatus] = []

    async def listener(status: PrinterStatus) -> None:
        statuses.append(status)

    connection = BambuConnection(SETTINGS, listener, sleep=FakeSleep(1))
    await connection.start()
    try:
        await asyncio.wait_for(connection.attempted.wait(), 5)
        await wait_until(lambda: len(sent) == 3, 5, "three packets sent", interval=0.001)
        assert sent == [f"subscribe device/{SETTINGS.serial}/report", "pushall", "get_version"]
        assert statuses == [] and not acknowledged.is_set()
    finally:
        await connection.close()


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


def push(sequence_id: int, **fields: object) -> bytes:
    body = {"command": "push_status", "msg": 0, "sequence_id": str(sequence_id), "gcode_state": "IDLE", **fields}
    return json.dumps({"print": body}).encode()


async def test_a_report_that_changes_nothing_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    statuses: list[PrinterStatus] = []
    parsed: list[object] = []
    parse = connection_module.parse_status

    def counting_parse(report: object) -> PrinterStatus:
        parsed.append(report)
        return parse(report)  # type: ignore[arg-type]

    async def listener(status: PrinterStatus) -> None:
        statuses.append(status)

    monkeypatch.setattr(connection_module, "parse_status", counting_parse)
    connection = BambuConnection(SETTINGS, listener)

    for sequence_id in range(5):
        await connection._handle(push(sequence_id, mc_percent=0))
    await connection._handle(push(5, mc_percent=3))

    assert len(parsed) == 2, "the first report and the one that moved progress"
    assert [s.progress_percent for s in statuses] == [0, 3]


async def test_a_repeated_report_is_dropped_before_it_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports that differ only in their sequence ids are not even decoded; one that moves something is."""
    decoded: list[object] = []
    loads = json.loads

    def counting_loads(payload: bytes) -> object:
        decoded.append(payload)
        return loads(payload)

    statuses: list[PrinterStatus] = []

    async def listener(status: PrinterStatus) -> None:
        statuses.append(status)

    monkeypatch.setattr(connection_module.json, "loads", counting_loads)
    connection = BambuConnection(SETTINGS, listener)
    for sequence_id in range(5):
        await connection._handle(push(sequence_id, mc_percent=0))
    await connection._handle(
        json.dumps(
            {"print": {"sequence_id": "9", "command": "push_status", "msg": 0, "gcode_state": "IDLE", "mc_percent": 0}},
            separators=(",", ":"),
        ).encode()
    )
    await connection._handle(push(6, mc_percent=4))

    assert len(decoded) == 3, "the first report, the same one written compactly, and the one that moved"
    assert [s.progress_percent for s in statuses] == [0, 4]


async def test_a_repeated_report_is_dropped_before_aiomqtt_wraps_and_queues_it() -> None:
    """Repeats never reach aiomqtt's handler (nor its iterator's queue); they still count as hearing from it."""
    statuses: list[PrinterStatus] = []

    async def listener(status: PrinterStatus) -> None:
        statuses.append(status)

    wrapped: list[bytes] = []
    client = aiomqtt.Client("192.0.2.7")
    aiomqtt_handler = client._client.on_message
    assert aiomqtt_handler is not None

    def handler(paho_client: object, userdata: object, message: MQTTMessage) -> None:
        wrapped.append(message.payload)
        aiomqtt_handler(paho_client, userdata, message)

    client._client.on_message = handler
    connection = BambuConnection(SETTINGS, listener)
    connection_module._gate_reports(client, connection._admit)

    def receive(payload: bytes) -> None:
        message = MQTTMessage(topic=f"device/{SETTINGS.serial}/report".encode())
        message.payload = payload
        client._client.on_message(client._client, None, message)  # as paho hands a PUBLISH over

    async def handle_queued() -> None:
        while wrapped:
            await connection._handle(wrapped.pop(0), admitted=True)

    receive(push(1, mc_percent=0))
    await handle_queued()
    connection._heard_at = 0.0
    for sequence_id in range(2, 5):
        receive(push(sequence_id, mc_percent=0))
    assert wrapped == [] and connection._heard_at > 0.0
    receive(push(5, mc_percent=4))
    await handle_queued()

    assert [s.progress_percent for s in statuses] == [0, 4]


async def test_a_command_waiting_for_its_effect_sees_a_repeated_report() -> None:
    """stop() on a printer already idle is accepted by the next report, even one that changes nothing."""

    async def listener(status: PrinterStatus) -> None:
        return None

    connection = BambuConnection(SETTINGS, listener)
    await connection._handle(push(1))
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    connection._pending["7"] = _PendingCommand("stop", future, lambda s: s.gcode_state == "IDLE")  # type: ignore[arg-type]

    await connection._handle(push(2))

    assert future.done() and future.result() is None


@pytest.mark.parametrize("upload_ends_at", [149.9, 150.0, 200.0])
async def test_no_project_file_goes_after_the_time_to_start_has_passed(
    monkeypatch: pytest.MonkeyPatch, upload_ends_at: float
) -> None:
    """An upload that ended after `start_by` sends no start: the dispatch deadline may have given the job back,
    and the queue sent it to another printer. The upload itself is given only the time left."""
    now = [100.0]
    monkeypatch.setattr(driver_module, "monotonic", lambda: now[0])
    timeouts: list[float] = []

    async def upload(**kwargs: object) -> None:
        timeouts.append(kwargs["timeout"])  # type: ignore[arg-type]
        now[0] = upload_ends_at

    sent: list[dict[str, object]] = []

    async def command(command: dict[str, object], accepted_by: object) -> None:
        sent.append(command)

    async def listener(status: PrinterStatus) -> None:
        return None

    monkeypatch.setattr(connection_module.ftps, "upload", upload)
    connection = BambuConnection(SETTINGS, listener)
    monkeypatch.setattr(connection, "_require_connection", lambda: None)
    monkeypatch.setattr(connection, "_command", command)
    start = connection.start_print(
        file_name="j1.gcode.3mf", data=b"3mf", plate="1", ams_mapping=[0], subtask_name="j1", start_by=150.0
    )

    if upload_ends_at < 150.0:
        await start
        assert [c["print"]["subtask_name"] for c in sent] == ["j1"]  # type: ignore[index]
    else:
        with pytest.raises(UploadError, match="too late to start the job before its dispatch deadline"):
            await start
        assert sent == []
    assert timeouts == [50.0]


async def test_no_upload_begins_once_the_time_to_start_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_module, "monotonic", lambda: 100.0)

    async def upload(**kwargs: object) -> None:
        raise AssertionError("uploaded")

    async def listener(status: PrinterStatus) -> None:
        return None

    monkeypatch.setattr(connection_module.ftps, "upload", upload)
    connection = BambuConnection(SETTINGS, listener)
    monkeypatch.setattr(connection, "_require_connection", lambda: None)
    with pytest.raises(UploadError, match="too late"):
        await connection.start_print(
            file_name="j1.gcode.3mf", data=b"3mf", plate="1", ams_mapping=[0], subtask_name="j1", start_by=99.0
        )


async def _loop_turns() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_socket_is_watched_only_while_it_is_still_paho_s_own() -> None:
    """aiomqtt asks the loop to watch paho's socket (reading once open, writing when it has data to send) from paho's
    thread; a socket paho closed before the loop got to the request is not watched: neither its closed descriptor
    (asyncio's "Bad file descriptor" ERROR) nor another printer's socket that opened meanwhile under the same number
    (the dead client's reader or writer would replace that printer's own and run at every turn)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    client = aiomqtt.Client("192.0.2.7")
    connection_module._watch_only_current_socket(client)
    paho = client._client
    opened, register = paho.on_socket_open, paho.on_socket_register_write
    assert opened is not None and register is not None
    try:
        for announce in (opened, register):
            closed, peer = socket.socketpair()
            descriptor = closed.fileno()
            paho._sock = closed
            announce(paho, None, closed)
            paho._sock = None  # paho forgets its socket, then closes it
            closed.close()
            other, other_peer = socket.socketpair()
            assert other.fileno() == descriptor  # the lowest free number, as the kernel hands them out
            await _loop_turns()
            assert errors == []
            for descriptor in (other.fileno(), other_peer.fileno()):
                assert loop.remove_reader(descriptor) is False and loop.remove_writer(descriptor) is False
            for sock in (peer, other, other_peer):
                sock.close()

        live, live_peer = socket.socketpair()
        paho._sock = live
        writes: list[None] = []
        paho.loop_write = lambda: writes.append(None)  # type: ignore[method-assign]
        register(paho, None, live)
        await wait_until(lambda: bool(writes), 2.0, "the writer called on a writable socket")
        assert loop.remove_writer(live.fileno()) is True
        paho._sock = None
        live.close()
        live_peer.close()
    finally:
        loop.set_exception_handler(None)
