"""The P1/A1 camera: TLS to port 6000 (the printer's certificate checked like its MQTT one), an 80-byte
login with the access code, then a JPEG frame behind a 16-byte header, over and over. The gateway keeps
the stream open while someone watches and hands out the newest frame; the access code never leaves it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import time

from printer_gateway.adapters.bambu.tls import check_peer_serial
from printer_gateway.adapters.driver import CameraUnavailable

log = logging.getLogger(__name__)

CAMERA_PORT = 6000
LOGIN_HEADER = struct.pack("<IIII", 0x40, 0x3000, 0, 0)
FRAME_HEADER_SIZE = 16
MAX_FRAME_BYTES = 4 * 1024 * 1024
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"


def login_packet(access_code: str, username: str = "bblp") -> bytes:
    """16-byte header, then user name and access code, each NUL-padded to 32 bytes."""
    user, code = username.encode(), access_code.encode()
    if len(user) > 32 or len(code) > 32:
        raise ValueError("user name and access code are at most 32 bytes")
    return LOGIN_HEADER + user.ljust(32, b"\0") + code.ljust(32, b"\0")


def frame_size(header: bytes) -> int:
    """The JPEG's length, little endian in the first 4 bytes of the frame header."""
    if len(header) != FRAME_HEADER_SIZE:
        raise ValueError("a frame header is 16 bytes")
    (size,) = struct.unpack_from("<I", header)
    if not 0 < size <= MAX_FRAME_BYTES:
        raise ValueError(f"implausible frame size {size}")
    return int(size)


def is_jpeg(data: bytes) -> bool:
    return data.startswith(_JPEG_START) and data.rstrip(b"\0").endswith(_JPEG_END)


class LiveCamera:
    """A camera stream opened on the first request and closed after `idle_after` seconds unwatched; it
    keeps the newest picture. Subclasses say how pictures arrive (`_run`, calling `_publish`)."""

    def __init__(self, name: str, *, connect_timeout: float = 10.0, idle_after: float = 30.0) -> None:
        self._name = name
        self._connect_timeout, self._idle_after = connect_timeout, idle_after
        self._frame: bytes | None = None
        self._frame_at = 0.0
        self._wanted_at = 0.0
        self._waiting = 0
        self._error: str | None = None
        self._fresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def streaming(self) -> bool:
        return self._task is not None and not self._task.done()

    async def snapshot(self, timeout: float = 10.0) -> bytes:
        """The newest frame, at most a second old; raises `CameraUnavailable` with the reason."""
        self._wanted_at = time.monotonic()
        if self._task is None or self._task.done():
            self._frame, self._error = None, None
            self._fresh.clear()
            self._task = asyncio.create_task(self._stream(), name=f"camera-{self._name}")
        if self._frame is not None and time.monotonic() - self._frame_at < 1.0:
            return self._frame
        self._fresh.clear()
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await self._fresh.wait()
        except TimeoutError:
            raise CameraUnavailable(self._error or "the camera sent no picture in time") from None
        finally:
            self._waiting -= 1
        if self._frame is None:
            raise CameraUnavailable(self._error or "the camera stream ended")
        self._wanted_at = time.monotonic()  # idle counts from the last picture handed out, not the ask
        return self._frame

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _watched(self) -> bool:
        """Someone waits for a picture, or had one less than `idle_after` seconds ago."""
        return self._waiting > 0 or time.monotonic() - self._wanted_at < self._idle_after

    def _publish(self, picture: bytes) -> None:
        self._frame, self._frame_at = picture, time.monotonic()
        self._fresh.set()

    async def _run(self) -> None:
        raise NotImplementedError

    async def _stream(self) -> None:
        try:
            await self._run()
        except CameraUnavailable as error:
            self._error = str(error)
            log.info("camera %s: %s", self._name, self._error)
        except (OSError, TimeoutError, ValueError) as error:
            self._error = f"camera: {error or type(error).__name__}"
            log.info("camera %s: %s", self._name, self._error)
        finally:
            self._frame = None
            self._fresh.set()


class JpegCamera(LiveCamera):
    """The P1/A1 stream: one TLS connection, JPEG frames as they come."""

    def __init__(
        self,
        host: str,
        port: int,
        access_code: str,
        ssl_context: ssl.SSLContext,
        *,
        connect_timeout: float = 10.0,
        idle_after: float = 30.0,
    ) -> None:
        super().__init__(f"{host}:{port}", connect_timeout=connect_timeout, idle_after=idle_after)
        self._host, self._port, self._access_code, self._ssl = host, port, access_code, ssl_context

    async def _run(self) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(self._host, self._port, ssl=self._ssl)
            expected_serial = getattr(self._ssl, "expected_serial", None)
            if expected_serial:
                check_peer_serial(writer.get_extra_info("peercert"), expected_serial)
            writer.write(login_packet(self._access_code))
            await writer.drain()
            while self._watched():
                async with asyncio.timeout(self._connect_timeout):
                    header = await reader.readexactly(FRAME_HEADER_SIZE)
                    image = await reader.readexactly(frame_size(header))
                if not is_jpeg(image):
                    raise ValueError("the camera sent something that is not a JPEG picture")
                self._publish(image)
        except asyncio.IncompleteReadError:
            self._error = "the camera closed the stream (wrong access code?)"
        finally:
            if writer is not None:
                writer.transport.abort()
