"""A minimal MQTT 3.1.1 broker for one printer: a real Bambu printer runs its own broker.

Built on ``asyncio.Protocol`` (no task per connection) so one process can host a thousand printers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

log = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

CONNACK_ACCEPTED = 0
CONNACK_BAD_PROTOCOL = 1
CONNACK_NOT_AUTHORIZED = 5

MAX_PACKET = 1 << 20
MAX_WRITE_BUFFER = 8 << 20
CONNECT_TIMEOUT = 10.0
PINGRESP_PACKET = b"\xd0\x00"


class MqttProtocolError(Exception):
    """The peer broke MQTT framing or ordering; the connection is closed."""


def encode_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def decode_length(buf: bytes | bytearray, offset: int) -> tuple[int, int] | None:
    """Remaining length and the offset after it, or None if the buffer is still short."""
    value, shift = 0, 0
    for i in range(4):
        if offset + i >= len(buf):
            return None
        byte = buf[offset + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset + i + 1
        shift += 7
    raise MqttProtocolError("remaining length longer than 4 bytes")


def encode_string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def encode_packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([ptype << 4 | flags]) + encode_length(len(body)) + body


def encode_publish(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0, retain: bool = False) -> bytes:
    body = encode_string(topic)
    if qos:
        body += struct.pack("!H", packet_id)
    return encode_packet(PUBLISH, qos << 1 | int(retain), body + payload)


def topic_matches(topic_filter: str, topic: str) -> bool:
    filter_parts, topic_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(filter_parts):
        if part == "#":
            return True
        if i >= len(topic_parts) or (part != "+" and part != topic_parts[i]):
            return False
    return len(filter_parts) == len(topic_parts)


class _Reader:
    """Cursor over one packet body."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u8(self) -> int:
        if self.pos + 1 > len(self.data):
            raise MqttProtocolError("packet too short")
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        if self.pos + 2 > len(self.data):
            raise MqttProtocolError("packet too short")
        (value,) = struct.unpack_from("!H", self.data, self.pos)
        self.pos += 2
        return int(value)

    def binary(self) -> bytes:
        n = self.u16()
        if self.pos + n > len(self.data):
            raise MqttProtocolError("string runs past the packet")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def text(self) -> str:
        try:
            return self.binary().decode()
        except UnicodeDecodeError as exc:
            raise MqttProtocolError("invalid UTF-8") from exc

    def rest(self) -> bytes:
        return self.data[self.pos :]

    def at_end(self) -> bool:
        return self.pos >= len(self.data)


@dataclass
class BrokerHooks:
    """How a broker asks its printer about credentials and hands it commands."""

    authenticate: Callable[[str | None, bytes | None], bool]
    on_publish: Callable[[str, bytes], None]
    on_subscribe: Callable[[], None]


class MqttSession(asyncio.Protocol):
    """One client connection."""

    def __init__(self, broker: MqttBroker) -> None:
        self._broker = broker
        self._loop = asyncio.get_running_loop()
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.connected = False
        self.client_id = ""
        self.report_qos: int | None = None
        self._filters: dict[str, int] = {}
        self._keepalive = 0.0
        self._last_rx = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._next_packet_id = 0

    # asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self._last_rx = self._loop.time()
        self._broker.sessions.add(self)
        self._timer = self._loop.call_later(CONNECT_TIMEOUT, self._check_connect)

    def connection_lost(self, exc: Exception | None) -> None:
        self._broker.sessions.discard(self)
        if self.report_qos is not None:
            self._broker.subscribers.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        self.connected = False

    def data_received(self, data: bytes) -> None:
        self._last_rx = self._loop.time()
        self._buf += data
        buf = self._buf
        try:
            while len(buf) >= 2:
                decoded = decode_length(buf, 1)
                if decoded is None:
                    return
                length, start = decoded
                if length > MAX_PACKET:
                    raise MqttProtocolError("packet too large")
                end = start + length
                if len(buf) < end:
                    return
                header = buf[0]
                body = bytes(buf[start:end])
                del buf[:end]
                self._handle(header >> 4, header & 0x0F, body)
                if self.transport is None or self.transport.is_closing():
                    return
        except MqttProtocolError as exc:
            log.debug("closing MQTT client %r: %s", self.client_id, exc)
            self.abort()

    # packets ----------------------------------------------------------------------------------
    def _handle(self, ptype: int, flags: int, body: bytes) -> None:
        if not self.connected:
            if ptype != CONNECT:
                raise MqttProtocolError("first packet must be CONNECT")
            self._on_connect(_Reader(body))
            return
        if ptype == PUBLISH:
            self._on_publish(flags, _Reader(body))
        elif ptype == PINGREQ:
            self.write(PINGRESP_PACKET)
        elif ptype == SUBSCRIBE:
            self._on_subscribe(_Reader(body))
        elif ptype == UNSUBSCRIBE:
            self._on_unsubscribe(_Reader(body))
        elif ptype == PUBACK or ptype == PUBCOMP:
            return
        elif ptype == PUBREC:
            self.write(encode_packet(PUBREL, 0b0010, body[:2]))
        elif ptype == PUBREL:
            self.write(encode_packet(PUBCOMP, 0, body[:2]))
        elif ptype == DISCONNECT:
            self.close()
        else:
            raise MqttProtocolError(f"unexpected packet type {ptype}")

    def _on_connect(self, r: _Reader) -> None:
        protocol, level = r.text(), r.u8()
        flags = r.u8()
        keepalive = r.u16()
        if (protocol, level) not in (("MQTT", 4), ("MQIsdp", 3)):
            self._connack(CONNACK_BAD_PROTOCOL)
            self.close()
            return
        self.client_id = r.text()
        if flags & 0x04:
            r.text()
            r.binary()
        username = r.text() if flags & 0x80 else None
        password = r.binary() if flags & 0x40 else None
        if not self._broker.hooks.authenticate(username, password):
            log.info("MQTT client %r rejected: bad username or access code", self.client_id)
            self._connack(CONNACK_NOT_AUTHORIZED)
            self.close()
            return
        self.connected = True
        self._keepalive = keepalive * 1.5
        self._connack(CONNACK_ACCEPTED)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._keepalive:
            self._timer = self._loop.call_later(self._keepalive, self._check_keepalive)

    def _connack(self, code: int) -> None:
        self.write(bytes([CONNACK << 4, 2, 0, code]))

    def _on_publish(self, flags: int, r: _Reader) -> None:
        qos = (flags >> 1) & 0x03
        topic = r.text()
        packet_id = r.u16() if qos else 0
        payload = r.rest()
        if qos == 1:
            self.write(encode_packet(PUBACK, 0, struct.pack("!H", packet_id)))
        elif qos == 2:
            self.write(encode_packet(PUBREC, 0, struct.pack("!H", packet_id)))
        elif qos == 3:
            raise MqttProtocolError("QoS 3")
        self._broker.hooks.on_publish(topic, payload)

    def _on_subscribe(self, r: _Reader) -> None:
        packet_id = r.u16()
        granted = bytearray()
        while not r.at_end():
            topic_filter, requested = r.text(), r.u8() & 0x03
            if topic_matches(topic_filter, self._broker.report_topic):
                qos = min(requested, 1)
                self._filters[topic_filter] = qos
                granted.append(qos)
            else:
                granted.append(0x80)
        if not granted:
            raise MqttProtocolError("SUBSCRIBE without topics")
        self.write(encode_packet(SUBACK, 0, struct.pack("!H", packet_id) + bytes(granted)))
        self._update_report_qos()
        if self.report_qos is not None:
            self._broker.hooks.on_subscribe()

    def _on_unsubscribe(self, r: _Reader) -> None:
        packet_id = r.u16()
        while not r.at_end():
            self._filters.pop(r.text(), None)
        self.write(encode_packet(UNSUBACK, 0, struct.pack("!H", packet_id)))
        self._update_report_qos()

    def _update_report_qos(self) -> None:
        self.report_qos = max(self._filters.values()) if self._filters else None
        if self.report_qos is None:
            self._broker.subscribers.discard(self)
        else:
            self._broker.subscribers.add(self)

    # timers -----------------------------------------------------------------------------------
    def _check_connect(self) -> None:
        self._timer = None
        if not self.connected:
            self.abort()

    def _check_keepalive(self) -> None:
        idle = self._loop.time() - self._last_rx
        if idle >= self._keepalive:
            log.debug("MQTT client %r missed its keepalive", self.client_id)
            self._timer = None
            self.abort()
        else:
            self._timer = self._loop.call_later(self._keepalive - idle, self._check_keepalive)

    # output -----------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("MQTT client %r too slow, dropping it", self.client_id)
            self.abort()
            return
        transport.write(data)

    def send_publish(self, topic: str, payload: bytes, qos0_packet: bytes) -> None:
        if self.report_qos:
            self._next_packet_id = self._next_packet_id % 0xFFFF + 1
            self.write(encode_publish(topic, payload, 1, self._next_packet_id))
        else:
            self.write(qos0_packet)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class MqttBroker:
    """Listens for one printer; everything it publishes goes to ``device/<serial>/report``."""

    def __init__(self, *, report_topic: str, hooks: BrokerHooks, ssl_context: ssl.SSLContext | None) -> None:
        self.report_topic = report_topic
        self.hooks = hooks
        self._ssl = ssl_context
        self.sessions: set[MqttSession] = set()
        self.subscribers: set[MqttSession] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def client_count(self) -> int:
        return sum(1 for s in self.sessions if s.connected)

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: MqttSession(self), host, port, ssl=self._ssl, reuse_address=True, backlog=128
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def publish(self, payload: bytes) -> int:
        """Sends to every subscriber; returns how many got it."""
        if not self.subscribers:
            return 0
        packet = encode_publish(self.report_topic, payload)
        sent = 0
        for session in list(self.subscribers):
            if session.connected:
                session.send_publish(self.report_topic, payload, packet)
                sent += 1
        return sent

    def drop_clients(self) -> None:
        for session in list(self.sessions):
            session.abort()
        self.sessions.clear()
        self.subscribers.clear()

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.drop_clients()
        if server is not None:
            try:
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except TimeoutError:
                log.debug("MQTT listener on port %s slow to close", self.port)
