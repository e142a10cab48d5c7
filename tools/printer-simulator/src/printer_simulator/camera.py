"""The P1/A1 camera as the printers serve it (OpenBambuAPI's video notes): TLS on its own port (6000 on
hardware), an 80-byte login (16-byte header `40 00 00 00 00 30 00 00` + 8 zero bytes, then `bblp` and
the access code, each NUL-padded to 32 bytes), then JPEG frames, each behind a 16-byte header whose
first 4 bytes are its length (little endian). A wrong login is closed without a word.

The picture is a test card; every frame carries its number and time in a JPEG comment, so frames differ."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
import struct
from importlib import resources

log = logging.getLogger(__name__)

LOGIN_SIZE = 80
LOGIN_HEADER = struct.pack("<IIII", 0x40, 0x3000, 0, 0)
FRAME_INTERVAL = 0.5


def test_card() -> bytes:
    return resources.files("printer_simulator").joinpath("camera_test_card.jpg").read_bytes()


def login_packet(access_code: str, username: str = "bblp") -> bytes:
    return LOGIN_HEADER + username.encode().ljust(32, b"\0") + access_code.encode().ljust(32, b"\0")


def frame(jpeg: bytes, number: int) -> bytes:
    """The test card with a comment naming the frame, behind the 16-byte frame header."""
    note = f"printfarm simulator frame {number} at {dt.datetime.now(dt.UTC).isoformat(timespec='milliseconds')}"
    comment = b"\xff\xfe" + struct.pack(">H", len(note) + 2) + note.encode()
    image = jpeg[:2] + comment + jpeg[2:]
    return struct.pack("<IIII", len(image), 0, 1, 0) + image


class CameraServer:
    def __init__(self, ssl_context: ssl.SSLContext, access_code: str, interval: float = FRAME_INTERVAL) -> None:
        self._ssl = ssl_context
        self._access_code = access_code
        self._interval = interval
        self._jpeg = test_card()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.frames_sent = 0
        self.logins_refused = 0

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def client_count(self) -> int:
        return len(self._writers)

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, ssl=self._ssl, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        self.drop_clients()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    def drop_clients(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            login = await asyncio.wait_for(reader.readexactly(LOGIN_SIZE), 10)
            if login != login_packet(self._access_code):
                self.logins_refused += 1
                return
            self._writers.add(writer)
            number = 0
            while True:
                number += 1
                writer.write(frame(self._jpeg, number))
                await writer.drain()
                self.frames_sent += 1
                await asyncio.sleep(self._interval)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
