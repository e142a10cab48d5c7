"""The simulator on the wire: raw MQTT over TLS, implicit FTPS with ftplib, the control API, the CLI."""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import io
import json
import os
import signal
import socket
import ssl
import struct
import sys
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from printer_simulator import ControlServer, Fleet, build_project, parse_materials, parse_printer
from printer_simulator.__main__ import event_loop_factory
from printer_simulator.printer import SimulatedPrinter
from servicekit.testing import wait_until

pytestmark = pytest.mark.timeout(30)

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "bambu"
"""Captured reports of real printers (the repository's `tests/fixtures`): the shapes the simulator copies."""
WAIT = 5.0
CANCELLED = 50348044
FARM_KEYS = (
    *("gcode_state", "mc_percent", "mc_remaining_time", "layer_num", "total_layer_num"),
    *("gcode_file_prepare_percent", "subtask_name", "gcode_file", "print_error", "hms", "ams", "vt_tray"),
    *("sequence_id", "command", "nozzle_temper", "print_type"),
)

_serials = iter(range(1, 10_000))


# --- a raw MQTT 3.1.1 client, so the tests see exactly what goes over the wire -------------------------
def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


class RawMqtt:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.messages: asyncio.Queue[tuple[str, int, dict[str, Any]]] = asyncio.Queue()
        self.control: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._packet_id = 0

    @classmethod
    async def connect(
        cls,
        printer: SimulatedPrinter,
        context: ssl.SSLContext,
        *,
        password: str | None = None,
        keepalive: int = 60,
    ) -> tuple[RawMqtt, int]:
        reader, writer = await asyncio.open_connection(printer.host, printer.mqtt_port, ssl=context)
        client = cls(reader, writer)
        secret = printer.spec.access_code if password is None else password
        body = _string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive)
        body += _string("test-client") + _string("bblp") + _string(secret)
        client._send(0x10, body)
        header = await asyncio.wait_for(reader.readexactly(4), WAIT)
        assert header[:2] == b"\x20\x02"
        client._task = asyncio.create_task(client._read_loop())
        return client, header[3]

    def _send(self, first: int, body: bytes) -> None:
        self.writer.write(bytes([first]) + _length(len(body)) + body)

    async def _read_loop(self) -> None:
        try:
            while True:
                first = (await self.reader.readexactly(1))[0]
                length, shift = 0, 0
                while True:
                    byte = (await self.reader.readexactly(1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                body = await self.reader.readexactly(length)
                if first >> 4 == 3:
                    qos = (first >> 1) & 3
                    (topic_len,) = struct.unpack_from("!H", body)
                    topic = body[2 : 2 + topic_len].decode()
                    offset = 2 + topic_len
                    if qos:
                        self._send(0x40, body[offset : offset + 2])
                        offset += 2
                    await self.messages.put((topic, qos, json.loads(body[offset:])))
                else:
                    await self.control.put((first >> 4, body))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            self.closed.set()

    async def subscribe(self, topic: str, qos: int = 0) -> int:
        self._packet_id += 1
        self._send(0x82, struct.pack("!H", self._packet_id) + _string(topic) + bytes([qos]))
        packet_type, body = await asyncio.wait_for(self.control.get(), WAIT)
        assert packet_type == 9 and body[:2] == struct.pack("!H", self._packet_id)
        return body[2]

    async def unsubscribe(self, topic: str) -> None:
        self._packet_id += 1
        self._send(0xA2, struct.pack("!H", self._packet_id) + _string(topic))
        packet_type, _ = await asyncio.wait_for(self.control.get(), WAIT)
        assert packet_type == 11

    async def publish(self, topic: str, message: dict[str, Any], qos: int = 1) -> None:
        payload = json.dumps(message).encode()
        if qos:
            self._packet_id += 1
            self._send(0x32, _string(topic) + struct.pack("!H", self._packet_id) + payload)
            packet_type, body = await asyncio.wait_for(self.control.get(), WAIT)
            assert (packet_type, body) == (4, struct.pack("!H", self._packet_id))
        else:
            self._send(0x30, _string(topic) + payload)

    async def ping(self) -> None:
        self._send(0xC0, b"")
        packet_type, _ = await asyncio.wait_for(self.control.get(), WAIT)
        assert packet_type == 13

    async def next_print(
        self, predicate: Callable[[dict[str, Any]], bool] = lambda _: True, timeout: float = WAIT
    ) -> dict[str, Any]:
        """The next ``print`` object (report or reply) that satisfies ``predicate``."""

        async def find() -> dict[str, Any]:
            while True:
                _, _, message = await self.messages.get()
                body = message.get("print")
                if isinstance(body, dict) and predicate(body):
                    return body

        return await asyncio.wait_for(find(), timeout)

    async def next_message(self, kind: str, timeout: float = WAIT) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                _, _, message = await self.messages.get()
                if kind in message:
                    return dict(message[kind])

        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass


# --- implicit FTPS with ftplib -----------------------------------------------------------------------
class ImplicitFtpTls(ftplib.FTP_TLS):
    """ftplib speaks explicit FTPS; a Bambu printer expects TLS from the first byte."""

    def connect(self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None) -> str:
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((host, port), self.timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def ftps_session(printer: SimulatedPrinter, context: ssl.SSLContext, password: str | None = None) -> ImplicitFtpTls:
    ftp = ImplicitFtpTls(context=context, timeout=WAIT)
    ftp.connect(printer.host, printer.ftp_port)
    ftp.login("bblp", printer.spec.access_code if password is None else password)
    ftp.prot_p()
    return ftp


def upload(printer: SimulatedPrinter, context: ssl.SSLContext, name: str, data: bytes) -> int | None:
    ftp = ftps_session(printer, context)
    try:
        ftp.storbinary(f"STOR {name}", io.BytesIO(data))
        return ftp.size(name)
    finally:
        ftp.quit()


# --- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    fleet = Fleet(tmp_path_factory.mktemp("sim"), time_scale=3600.0, report_interval=0.1)
    yield fleet
    await fleet.stop()


@pytest.fixture
def context(fleet: Fleet) -> ssl.SSLContext:
    return fleet.ca.client_context()


PrinterFactory = Callable[..., Awaitable[SimulatedPrinter]]


@pytest.fixture
async def make_printer(fleet: Fleet) -> AsyncIterator[PrinterFactory]:
    created: list[str] = []

    async def make(model: str = "P1S", **extra: Any) -> SimulatedPrinter:
        serial = f"SIM{model}{next(_serials):05d}"
        spec = {
            "serial": serial,
            "model": model,
            "access_code": "12345678",
            "materials": [
                {"slot": 0, "type": "PLA", "color": "#FFFFFF", "profile": "GFA00", "remain_percent": 80},
                {"slot": 1, "type": "PETG", "color": "#000000", "profile": "GFG00"},
                {"slot": 254, "type": "ABS", "color": "FF0000FF"},
            ],
            **extra,
        }
        printer = await fleet.add_printer(parse_printer(spec))
        created.append(serial)
        return printer

    yield make
    for serial in created:
        if serial in fleet.printers:
            await fleet.remove_printer(serial)


@pytest.fixture
async def connect(context: ssl.SSLContext) -> AsyncIterator[Callable[..., Awaitable[RawMqtt]]]:
    clients: list[RawMqtt] = []

    async def open_client(printer: SimulatedPrinter, qos: int = 0) -> RawMqtt:
        client, code = await RawMqtt.connect(printer, context)
        assert code == 0
        clients.append(client)
        assert await client.subscribe(printer.report_topic, qos) == qos
        return client

    yield open_client
    for client in clients:
        await client.close()


def project_file(name: str, sequence_id: str = "7", **extra: Any) -> dict[str, Any]:
    return {
        "print": {
            "sequence_id": sequence_id,
            "command": "project_file",
            "param": "Metadata/plate_1.gcode",
            "url": f"ftp:///{name}",
            "file": name,
            "subtask_name": name.split(".")[0],
            "md5": "",
            "use_ams": True,
            "ams_mapping": [1],
            **extra,
        }
    }


def fixture_print(name: str) -> dict[str, Any]:
    raw = json.loads((FIXTURES / name).read_text())
    return dict(raw["pushall"]["print"] if "pushall" in raw else raw["push_all"])


# --- MQTT ---------------------------------------------------------------------------------------------
async def test_wrong_access_code_gets_connack_5_and_is_closed(
    make_printer: PrinterFactory, context: ssl.SSLContext
) -> None:
    printer = await make_printer()
    client, code = await RawMqtt.connect(printer, context, password="00000000")
    assert code == 5
    await asyncio.wait_for(client.closed.wait(), WAIT)
    assert printer.connected_clients == 0


async def test_server_certificate_has_the_serial_as_cn_and_no_san(
    make_printer: PrinterFactory, context: ssl.SSLContext, fleet: Fleet
) -> None:
    printer = await make_printer()
    _, writer = await asyncio.open_connection(printer.host, printer.mqtt_port, ssl=context)
    ssl_object = writer.get_extra_info("ssl_object")
    cert = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
    writer.close()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == printer.serial
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    x509_strict = fleet.ca.client_context()
    x509_strict.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
    _, writer = await asyncio.open_connection(printer.host, printer.mqtt_port, ssl=x509_strict)
    writer.close()
    strict = ssl.create_default_context(cafile=str(fleet.ca.cert_path))
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(printer.host, printer.mqtt_port, ssl=strict, server_hostname="printer.local")


async def test_pushall_gives_a_full_report_shaped_like_the_captured_ones(
    make_printer: PrinterFactory, connect: Callable[..., Awaitable[RawMqtt]]
) -> None:
    printer = await make_printer("P1P")
    client = await connect(printer)
    await client.publish(printer.request_topic, {"pushing": {"sequence_id": "0", "command": "pushall"}})
    report = await client.next_print(lambda p: p.get("msg") == 0)

    captured = fixture_print("P1P.json")
    assert set(captured) <= set(report), set(captured) - set(report)
    for key in FARM_KEYS:
        assert type(report[key]) is type(captured[key]), key
    assert set(captured["ams"]) <= set(report["ams"])
    captured_tray = captured["ams"]["ams"][0]["tray"][0]
    tray = report["ams"]["ams"][0]["tray"][0]
    assert set(captured_tray) <= set(tray)
    assert set(captured["vt_tray"]) <= set(report["vt_tray"])
    for other in ("MOCK-A1.json", "MOCK-P1PNOAMS.json"):
        assert set(fixture_print(other)) <= set(report), other

    assert report["command"] == "push_status"
    assert report["gcode_state"] == "IDLE"
    assert tray == {
        **tray,
        "id": "0",
        "tray_type": "PLA",
        "tray_color": "FFFFFFFF",
        "tray_info_idx": "GFA00",
        "remain": 80,
    }
    assert report["ams"]["ams"][0]["tray"][2]["tray_type"] == ""
    assert report["vt_tray"]["id"] == "254"
    assert report["vt_tray"]["tray_type"] == "ABS"
    assert report["vt_tray"]["tray_color"] == "FF0000FF"
    assert report["ams"]["tray_now"] == "255"


async def test_get_version_and_replies_echo_the_sequence_id(
    make_printer: PrinterFactory, connect: Callable[..., Awaitable[RawMqtt]]
) -> None:
    printer = await make_printer("X1C")
    client = await connect(printer, qos=1)
    await client.publish(printer.request_topic, {"info": {"command": "get_version", "sequence_id": "4711"}})
    info = await client.next_message("info")
    assert info["sequence_id"] == "4711"
    assert info["result"] == "success"
    modules = {m["name"]: m for m in info["module"]}
    assert modules["ota"]["sn"] == printer.serial
    assert modules["ota"]["sw_ver"]
    assert "ams/0" in modules
    await client.publish(printer.request_topic, {"print": {"command": "pause", "sequence_id": 12, "param": ""}})
    reply = await client.next_print(lambda p: p.get("command") == "pause")
    assert reply["sequence_id"] == 12
    assert reply["result"] == "failed"  # nothing to pause
    await client.ping()


async def test_printer_messages_use_the_granted_qos(make_printer: PrinterFactory, context: ssl.SSLContext) -> None:
    printer = await make_printer("X1C")
    client, _ = await RawMqtt.connect(printer, context)
    try:
        assert await client.subscribe("device/+/report", 1) == 1
        assert await client.subscribe("device/OTHER/report", 0) == 0x80
        topic, qos, message = await asyncio.wait_for(client.messages.get(), WAIT)
        assert (topic, qos) == (printer.report_topic, 1)
        assert message["print"]["command"] == "push_status"
        await client.unsubscribe("device/+/report")
        while not client.messages.empty():
            client.messages.get_nowait()
        printer.set_materials(())  # would be reported at once to a subscriber
        await client.ping()
        assert client.messages.empty()
    finally:
        await client.close()


async def test_x1_sends_full_reports_and_p1_sends_deltas(
    make_printer: PrinterFactory, connect: Callable[..., Awaitable[RawMqtt]]
) -> None:
    x1 = await make_printer("X1C")
    x1_client = await connect(x1)
    for _ in range(3):
        report = await x1_client.next_print()
        assert report["msg"] == 0 and "ams" in report and "upgrade_state" in report

    p1 = await make_printer("P1S", print_seconds=60)
    client = await connect(p1)
    first = await client.next_print()
    assert first["msg"] == 0 and "ams" in first
    delta = await client.next_print()
    assert delta == {"command": "push_status", "msg": 1, "sequence_id": delta["sequence_id"]}
    assert int(delta["sequence_id"]) > int(first["sequence_id"])

    p1.files["job.gcode.3mf"] = build_project()
    await client.publish(p1.request_topic, project_file("job.gcode.3mf"))
    running = await client.next_print(lambda p: p.get("gcode_state") == "RUNNING")
    assert running["msg"] == 1
    assert "upgrade_state" not in running and "vt_tray" not in running
    assert running["ams"] == {"tray_now": "1", "tray_tar": "1", "tray_pre": "1"}

    materials = parse_materials(
        [
            {"slot": 0, "type": "PLA", "color": "#FFFFFF", "profile": "GFA00", "remain_percent": 79},
            {"slot": 1, "type": "PETG", "color": "#00AE42"},
        ]
    )
    p1.set_materials(materials)
    change = await client.next_print(lambda p: "ams" in p and "ams" in p["ams"])
    new_tray = {
        "id": "1",
        "tray_color": "00AE42FF",
        "tray_info_idx": "GFG99",
        "tray_sub_brands": "",
        "cols": ["00AE42FF"],
    }
    assert change["ams"]["ams"] == [{"id": "0", "tray": [{"id": "0", "remain": 79}, new_tray]}]
    assert change["vt_tray"]["tray_type"] == ""

    await client.publish(p1.request_topic, {"pushing": {"sequence_id": "1", "command": "pushall"}})
    full = await client.next_print(lambda p: p.get("msg") == 0)
    assert full["gcode_state"] == "RUNNING" and full["ams"]["ams"][0]["tray"][1]["tray_color"] == "00AE42FF"


# --- printing -----------------------------------------------------------------------------------------
async def test_print_from_ftps_upload_to_finish(
    make_printer: PrinterFactory, connect: Callable[..., Awaitable[RawMqtt]], context: ssl.SSLContext
) -> None:
    printer = await make_printer("P1S")
    data = build_project(print_seconds=1800, layers=30)  # 30 min at time scale 3600: 0.5 s
    assert await asyncio.to_thread(upload, printer, context, "/benchy.gcode.3mf", data) == len(data)
    assert printer.files["benchy.gcode.3mf"] == data

    client = await connect(printer)
    state = await client.next_print()
    await client.publish(printer.request_topic, project_file("benchy.gcode.3mf", "99", subtask_name="Benchy"))
    reply = await client.next_print(lambda p: p.get("command") == "project_file")
    assert (reply["sequence_id"], reply["result"], reply["param"]) == ("99", "success", "Metadata/plate_1.gcode")

    seen: list[dict[str, Any]] = []
    while state.get("gcode_state") != "FINISH":
        report = await client.next_print(lambda p: p.get("command") == "push_status")
        state.update({k: v for k, v in report.items() if k not in ("ams", "vt_tray")})
        seen.append(dict(state))
    states = [s["gcode_state"] for s in seen]
    assert states.index("PREPARE") < states.index("RUNNING") < states.index("FINISH")
    percents = [s["mc_percent"] for s in seen if s["gcode_state"] == "RUNNING"]
    assert percents == sorted(percents) and max(percents) < 100
    assert state["mc_percent"] == 100 and state["mc_remaining_time"] == 0
    assert state["layer_num"] == state["total_layer_num"] == 30
    assert state["subtask_name"] == "Benchy"
    assert state["gcode_file"] == "benchy.gcode.3mf"
    assert state["print_error"] == 0
    prepare = next(s for s in seen if s["gcode_state"] == "PREPARE")
    assert prepare["mc_remaining_time"] == 30
    snapshot = printer.snapshot()
    assert snapshot["job"]["ams_mapping"] == [1]
    assert snapshot["tray_now"] == 1
    assert [(s["subtask_name"], s["outcome"]) for s in snapshot["starts"]] == [("Benchy", "finished")]


def _stor_without_tls_shutdown(
    printer: SimulatedPrinter, context: ssl.SSLContext, name: str, data: bytes
) -> int | None:
    """What drivers do against real printers: end the data channel after STOR without a TLS shutdown.

    Half-close and drain first: TLS 1.3 session tickets left unread would turn the close into a reset.
    """
    ftp = ftps_session(printer, context)
    try:
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd(f"STOR {name}")
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass
        conn.close()
        ftp.voidresp()
        return ftp.size(name)
    finally:
        ftp.quit()


async def test_ftps_commands_and_login(make_printer: PrinterFactory, context: ssl.SSLContext) -> None:
    printer = await make_printer("A1", host="127.0.0.7")  # every 127.x.y.z is local on Linux
    data = os.urandom(300_000)
    assert await asyncio.to_thread(_stor_without_tls_shutdown, printer, context, "raw.gcode.3mf", data) == len(data)
    assert printer.files["raw.gcode.3mf"] == data

    def session() -> tuple[list[str], list[str], str, bytes]:
        ftp = ftps_session(printer, context)
        try:
            ftp.storbinary("STOR model.stl", io.BytesIO(b"solid x"))
            names = ftp.nlst()
            listing: list[str] = []
            ftp.retrlines("LIST", listing.append)
            pwd = ftp.pwd()
            ftp.cwd("cache")
            ftp.cwd("/")
            ftp.delete("model.stl")
            got = bytearray()
            ftp.retrbinary("RETR raw.gcode.3mf", got.extend)
            with pytest.raises(ftplib.error_perm):
                ftp.size("model.stl")
            ftp.sendcmd("EPSV")  # the extended passive reply parses
            return names, listing, pwd, bytes(got)
        finally:
            ftp.quit()

    names, listing, pwd, got = await asyncio.to_thread(session)
    assert {"raw.gcode.3mf", "model.stl"} <= set(names)
    assert any(line.startswith("-") and line.endswith(" raw.gcode.3mf") and " 300000 " in line for line in listing)
    assert pwd == "/"
    assert got == data
    assert "model.stl" not in printer.files
    with pytest.raises(ftplib.error_perm, match="530"):
        await asyncio.to_thread(ftps_session, printer, context, "wrong")


def _plate2_only() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Metadata/plate_2.gcode", "G28\n")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "print_error"),
    [
        ("missing.gcode.3mf", None, 0x05004002),
        ("part.stl", b"solid part\nendsolid part\n", 0x05004002),
        ("part.scad", b"cube(10);", 0x05004002),
        ("broken.gcode.3mf", b"PK\x03\x04 this is not a zip", 0x05004003),
        ("unsliced.3mf", b"", 0x05004003),
    ],
)
async def test_a_file_that_is_not_a_sliced_3mf_is_refused_in_prepare(
    make_printer: PrinterFactory,
    connect: Callable[..., Awaitable[RawMqtt]],
    name: str,
    content: bytes | None,
    print_error: int,
) -> None:
    printer = await make_printer("X1C")
    if content is not None:
        printer.files[name] = content or _plate2_only()
    client = await connect(printer)
    await client.publish(printer.request_topic, project_file(name))
    reply = await client.next_print(lambda p: p.get("command") == "project_file")
    assert reply["result"] == "success"
    await client.next_print(lambda p: p.get("gcode_state") == "PREPARE")
    failed = await client.next_print(lambda p: p.get("gcode_state") == "FAILED")
    assert failed["print_error"] == print_error
    assert failed["subtask_name"] == name.split(".")[0]
    assert printer.snapshot()["job"]["refused_reason"]


async def test_stop_fails_with_0300_400c_then_idles(
    make_printer: PrinterFactory, connect: Callable[..., Awaitable[RawMqtt]]
) -> None:
    printer = await make_printer("P1P", print_seconds=30)
    printer.files["long.gcode.3mf"] = build_project()
    client = await connect(printer)
    await client.publish(printer.request_topic, project_file("long.gcode.3mf"))
    await client.next_print(lambda p: p.get("gcode_state") == "RUNNING")
    await client.publish(printer.request_topic, {"print": {"command": "stop", "sequence_id": "8", "param": ""}})
    reply = await client.next_print(lambda p: p.get("command") == "stop")
    assert (reply["result"], reply["sequence_id"]) == ("success", "8")
    failed = await client.next_print(lambda p: p.get("gcode_state") == "FAILED")
    assert failed["print_error"] == CANCELLED
    assert format(CANCELLED, "08X") == "0300400C"
    idle = await client.next_print(lambda p: p.get("gcode_state") == "IDLE")
    assert idle["print_error"] == 0
    assert printer.full_report()["subtask_name"] == "long"
    assert [(s["subtask_name"], s["outcome"]) for s in printer.starts] == [("long", "failed")]


async def test_developer_mode_off_refuses_commands_but_keeps_reporting(
    make_printer: PrinterFactory, connect: Callable[..., Awaitable[RawMqtt]]
) -> None:
    printer = await make_printer("P1S")
    printer.files["job.gcode.3mf"] = build_project()
    printer.set_developer_mode(False)
    client = await connect(printer)
    await client.publish(printer.request_topic, project_file("job.gcode.3mf", "31"))
    reply = await client.next_print(lambda p: p.get("command") == "project_file")
    assert reply == {
        "command": "project_file",
        "sequence_id": "31",
        "result": "failed",
        "reason": "mqtt message verify failed",
    }
    report = await client.next_print(lambda p: p.get("command") == "push_status")
    assert report is not None
    assert printer.gcode_state == "IDLE"
    await client.publish(printer.request_topic, {"pushing": {"sequence_id": "1", "command": "pushall"}})
    full = await client.next_print(lambda p: p.get("msg") == 0)
    assert full["gcode_state"] == "IDLE"


async def test_hms_filament_runout_pauses_until_resumed(
    make_printer: PrinterFactory, connect: Callable[..., Awaitable[RawMqtt]]
) -> None:
    printer = await make_printer("X1C", print_seconds=30)
    printer.files["job.gcode.3mf"] = build_project()
    client = await connect(printer)
    await client.publish(printer.request_topic, project_file("job.gcode.3mf"))
    await client.next_print(lambda p: p.get("gcode_state") == "RUNNING")
    printer.hms_pause()
    paused = await client.next_print(lambda p: p.get("gcode_state") == "PAUSE")
    assert paused["hms"] == [{"attr": 0x07002000, "code": 0x00020001}]
    assert paused["print_error"] == 0x07008011
    await client.publish(printer.request_topic, {"print": {"command": "resume", "sequence_id": "3", "param": ""}})
    running = await client.next_print(lambda p: p.get("gcode_state") == "RUNNING")
    assert running["hms"] == [] and running["print_error"] == 0


async def test_keepalive_closes_a_silent_client(make_printer: PrinterFactory, context: ssl.SSLContext) -> None:
    printer = await make_printer()
    client, code = await RawMqtt.connect(printer, context, keepalive=1)
    assert code == 0
    await asyncio.wait_for(client.closed.wait(), WAIT)
    assert printer.connected_clients == 0


async def test_aiomqtt_client_works(make_printer: PrinterFactory, context: ssl.SSLContext) -> None:
    aiomqtt = pytest.importorskip("aiomqtt")
    printer = await make_printer("A1")
    async with aiomqtt.Client(
        printer.host, printer.mqtt_port, username="bblp", password=printer.spec.access_code, tls_context=context
    ) as client:
        await client.subscribe(printer.report_topic, qos=1)
        await client.publish(printer.request_topic, json.dumps({"pushing": {"command": "pushall"}}), qos=1)
        async with asyncio.timeout(WAIT):
            async for message in client.messages:
                report = json.loads(message.payload)["print"]
                if report.get("msg") == 0:
                    break
    assert report["gcode_state"] == "IDLE"


# --- control API ------------------------------------------------------------------------------------
@pytest.fixture
async def control(fleet: Fleet) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    server = ControlServer(fleet)
    url = await server.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield session, url
    await server.stop()


async def test_control_api(
    control: tuple[aiohttp.ClientSession, str],
    connect: Callable[..., Awaitable[RawMqtt]],
    context: ssl.SSLContext,
    fleet: Fleet,
) -> None:
    http, url = control
    spec = {
        "serial": "CTRL0001",
        "model": "P1S",
        "access_code": "87654321",
        "tags": ["big"],
        "fabmatic": True,
        "prepare_seconds": 0.05,
        "print_seconds": 30,
        "materials": [{"slot": 254, "type": "TPU", "color": "#FFFFFF", "profile": "GFU01"}],
    }
    async with http.post(f"{url}/printers", json=spec) as response:
        assert response.status == 201
        created = await response.json()
    assert (created["access_code"], created["tags"], created["fabmatic"]) == ("87654321", ["big"], True)
    assert created["port"] > 0 and created["ftp_port"] > 0 and "BEGIN CERTIFICATE" in created["ca_cert"]
    async with http.post(f"{url}/printers", json=spec) as response:
        assert response.status == 409
    printer = fleet.get("CTRL0001")
    try:
        async with http.get(f"{url}/printers") as response:
            assert "CTRL0001" in [p["serial"] for p in (await response.json())["printers"]]
        client = await connect(printer)
        await client.next_print()

        async def detail() -> dict[str, Any]:
            async with http.get(f"{url}/printers/CTRL0001") as response:
                assert response.status == 200
                result: dict[str, Any] = await response.json()
                return result

        printer.files["a.gcode.3mf"] = b"x"
        await client.publish(printer.request_topic, {"pushing": {"command": "pushall", "sequence_id": "5"}})
        await client.next_print(lambda p: p.get("msg") == 0)
        state = await detail()
        assert state["connected_clients"] == 1
        assert state["files"] == [{"name": "a.gcode.3mf", "size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}]
        assert state["last_command"]["command"] == "pushall"
        assert "access_code" not in json.dumps(state)

        green_pla = [{"slot": 0, "type": "PLA", "color": "#00AE42", "profile": "GFA00"}]
        async with http.put(f"{url}/printers/CTRL0001/materials", json=green_pla) as response:
            assert response.status == 200
        change = await client.next_print(lambda p: "ams" in p)
        assert change["ams"]["ams"][0]["tray"][0]["tray_color"] == "00AE42FF"

        async with http.post(f"{url}/printers/CTRL0001/faults", json={"bogus": 1}) as response:
            assert response.status == 400
            assert "bogus" in (await response.json())["detail"]

        # refuse the next job in PREPARE
        printer.files["ok.gcode.3mf"] = build_project()
        async with http.post(f"{url}/printers/CTRL0001/faults", json={"refuse_next_job": 83902468}) as response:
            assert response.status == 200
        await client.publish(printer.request_topic, project_file("ok.gcode.3mf"))
        failed = await client.next_print(lambda p: p.get("gcode_state") == "FAILED")
        assert failed["print_error"] == 83902468

        # slow PREPARE, then an armed run-out that pauses the print, continued from the API
        slow_then_runout = {"slow_prepare_seconds": 0.4, "hms_pause": {"at_percent": 0}}
        await http.post(f"{url}/printers/CTRL0001/faults", json=slow_then_runout)
        await client.publish(printer.request_topic, project_file("ok.gcode.3mf", "2"))
        preparing = await client.next_print(lambda p: p.get("gcode_state") == "PREPARE")
        assert preparing["gcode_file_prepare_percent"] == "0"
        rising = await client.next_print(lambda p: 0 < int(p.get("gcode_file_prepare_percent", 0)) < 100)
        assert "gcode_state" not in rising  # still PREPARE, only the percent changed
        paused = await client.next_print(lambda p: p.get("gcode_state") == "PAUSE")
        assert paused["hms"] and paused["print_error"]
        async with http.post(f"{url}/printers/CTRL0001/faults", json={"hms_pause": False}) as response:
            assert (await response.json())["gcode_state"] == "RUNNING"

        # silence: the connection stays, reports stop
        await http.post(f"{url}/printers/CTRL0001/faults", json={"silent": True})
        await client.ping()  # everything sent before is queued once the PINGRESP arrives
        while not client.messages.empty():
            client.messages.get_nowait()
        with pytest.raises(TimeoutError):
            await client.next_print(timeout=0.5)
        await http.post(f"{url}/printers/CTRL0001/faults", json={"silent": False})
        await client.next_print()

        # connection drop
        await http.post(f"{url}/printers/CTRL0001/faults", json={"drop_connections": True})
        await asyncio.wait_for(client.closed.wait(), WAIT)

        # offline: nothing listens; online: same port again
        port = printer.mqtt_port
        async with http.post(f"{url}/printers/CTRL0001/faults", json={"offline": True}) as response:
            assert (await response.json())["online"] is False
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(printer.host, port)
        await http.post(f"{url}/printers/CTRL0001/faults", json={"offline": False})
        client = await connect(printer)
        assert printer.mqtt_port == port
        assert (await client.next_print())["gcode_state"] == "RUNNING"

        # power cycle: back in IDLE with the job forgotten
        async with http.post(
            f"{url}/printers/CTRL0001/faults", json={"power_cycle": {"down_seconds": 0.1}}
        ) as response:
            state = await response.json()
        assert (state["gcode_state"], state["subtask_name"], state["online"]) == ("IDLE", "", True)
        assert state["files"]  # the SD card keeps its files
        async with http.get(f"{url}/starts") as response:
            starts = [s for s in (await response.json())["starts"] if s["serial"] == "CTRL0001"]
        assert [s["outcome"] for s in starts][-1:] == ["power_lost"], "the print it lost power in"
        await asyncio.wait_for(client.closed.wait(), WAIT)
        client = await connect(printer)
        assert (await client.next_print())["gcode_state"] == "IDLE"
    finally:
        async with http.delete(f"{url}/printers/CTRL0001") as response:
            assert response.status == 204
    async with http.get(f"{url}/printers/CTRL0001") as response:
        assert response.status == 404
        assert response.content_type == "application/problem+json"


# --- CLI --------------------------------------------------------------------------------------------
def _read_out(out: Path) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = json.loads(out.read_text())
    except FileNotFoundError:
        return None
    return result


async def _run_cli(state_dir: Path, out: Path) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    await asyncio.to_thread(out.unlink, missing_ok=True)
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "printer_simulator", "--fleet", "default", "--state-dir", str(state_dir)],
        *["--control-port", "0", "--out", str(out), "--time-scale", "600", "--log-level", "WARNING"],
        stdout=asyncio.subprocess.DEVNULL,
    )
    await wait_until(lambda: out.exists() or process.returncode is not None, 15, "the out file")
    info = _read_out(out)
    assert process.returncode is None and info is not None
    return process, info


async def _terminate(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 10)


async def test_cli_default_fleet_out_file_and_restart(tmp_path: Path) -> None:
    out = tmp_path / "fleet-info.json"
    process, info = await _run_cli(tmp_path / "state", out)
    try:
        printers = info["printers"]
        assert [p["model"] for p in printers] == ["X1C", "P1S", "P1P", "A1", "Voron 2.4", "Prusa MK4"]
        assert [p["protocol"] for p in printers[4:]] == ["moonraker", "prusalink"]
        bambu = printers[:4]
        assert len({p["port"] for p in bambu} | {p["ftp_port"] for p in bambu} | {p["port"] for p in printers}) == 10
        assert [p["tags"] for p in printers if p["tags"]] == [["big"]]
        assert [p["name"] for p in printers if p["fabmatic"]] == ["p1s-01"]
        types = [m["type"] for p in printers for m in p["materials"]]
        assert sum(1 for p in printers if any(m["type"] == "ABS" for m in p["materials"])) == 1
        assert sum(1 for p in printers if any(m["type"] == "TPU" for m in p["materials"])) == 1
        assert {"PLA", "PETG", "ABS", "TPU"} <= set(types)
        async with aiohttp.ClientSession() as http, http.get(f"{info['control_url']}/printers") as response:
            assert len((await response.json())["printers"]) == 6
        context = ssl.create_default_context(cadata=info["ca_cert"])
        context.check_hostname = False
        _, writer = await asyncio.open_connection(printers[0]["host"], printers[0]["port"], ssl=context)
        writer.close()
    finally:
        assert await _terminate(process) == 0
    process, again = await _run_cli(tmp_path / "state", out)
    try:
        assert again["ca_cert"] == info["ca_cert"]
        assert [p["port"] for p in again["printers"]] == [p["port"] for p in printers]
    finally:
        assert await _terminate(process) == 0


def test_reports_and_ftps_work_on_the_event_loop_the_simulator_runs_on(tmp_path: Path) -> None:
    """`python -m printer_simulator` runs on uvloop where installed: its transports are not asyncio's."""
    factory = event_loop_factory()
    if factory is None:
        pytest.skip("uvloop is not installed")

    async def scenario() -> tuple[dict[str, Any], int | None]:
        fleet = Fleet(tmp_path / "sim", report_interval=0.1)
        try:
            await fleet.start([parse_printer({"serial": "UVLOOP01", "model": "X1C", "access_code": "12345678"})])
            printer = fleet.get("UVLOOP01")
            assert isinstance(printer, SimulatedPrinter)
            client, code = await RawMqtt.connect(printer, fleet.ca.client_context())
            assert code == 0
            await client.subscribe(printer.report_topic)
            report = await client.next_print(lambda p: p.get("gcode_state") == "IDLE")
            await client.close()
            size = await asyncio.to_thread(upload, printer, fleet.ca.client_context(), "uv.gcode.3mf", b"x" * 5000)
            return report, size
        finally:
            await fleet.stop()

    with asyncio.Runner(loop_factory=factory) as runner:
        report, size = runner.run(scenario())
    assert report["command"] == "push_status" and size == 5000
