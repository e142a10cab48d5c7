"""The P1/A1 camera as the printers serve it (OpenBambuAPI's video notes): TLS on its own port (6000 on
hardware), an 80-byte login (16-byte header `40 00 00 00 00 30 00 00` + 8 zero bytes, then `bblp` and
the access code, each NUL-padded to 32 bytes), then JPEG frames, each behind a 16-byte header whose
first 4 bytes are its length (little endian). A wrong login is closed without a word.

The picture is a test card; every frame carries its number and time in a JPEG comment, so frames differ."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
import struct
from importlib import resources

from printer_simulator.tls_stream import TlsStreamServer

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


class CameraServer(TlsStreamServer):
    def __init__(self, ssl_context: ssl.SSLContext, access_code: str, interval: float = FRAME_INTERVAL) -> None:
        super().__init__(ssl_context)
        self._access_code = access_code
        self._interval = interval
        self._jpeg = test_card()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            login = await asyncio.wait_for(reader.readexactly(LOGIN_SIZE), 10)
            if login != login_packet(self._access_code):
                self.logins_refused += 1
                return
            with self._streaming(writer):
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
            writer.transport.abort()
