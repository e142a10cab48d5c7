"""Turning H.264 video into JPEG pictures a browser shows: the port the RTSPS camera feeds, and its
adapter, the `ffmpeg` CLI (one process per watched camera, at most `limit` at once per gateway).

ffmpeg only ever sees video on its stdin: the gateway speaks RTSP and TLS itself, so the access code is
never on a command line (where `ps` would show it) and the printer's certificate is checked as for MQTT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from typing import Protocol

from printer_gateway.adapters.driver import CameraUnavailable

log = logging.getLogger(__name__)

MAX_PICTURE_BYTES = 8 * 1024 * 1024
_RST = range(0xD0, 0xD8)


class PictureDecoder(Protocol):
    """One running decoder: H.264 Annex B bytes in, JPEG pictures out."""

    async def feed(self, data: bytes) -> None: ...

    async def picture(self) -> bytes:
        """The next decoded picture; raises `CameraUnavailable` when the decoder has stopped."""
        ...


class H264Decoders(Protocol):
    def open(self) -> contextlib.AbstractAsyncContextManager[PictureDecoder]:
        """A decoder for one stream, stopped on leaving the block; raises `CameraUnavailable` when none
        can be had (no decoder installed, or too many cameras watched at once)."""
        ...


def jpeg_end(data: bytes | bytearray, start: int = 0) -> int | None:
    """Where the JPEG that begins at `start` ends (just past its EOI), or None when it is not all there.

    Walks the marker segments up to each SOS, then the entropy-coded data, where 0xFF is followed only by
    a stuffed 0x00 or a restart marker: a plain search for FF D9 could stop inside a table."""
    if data[start : start + 2] != b"\xff\xd8":
        raise ValueError("not the start of a JPEG picture")
    i = start + 2
    while True:
        if i + 2 > len(data):
            return None
        if data[i] != 0xFF:
            raise ValueError("broken JPEG marker")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:
            return i + 2
        if marker in _RST or marker == 0x01:
            i += 2
            continue
        if i + 4 > len(data):
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        i += 2 + length
        if marker != 0xDA:
            continue
        while True:  # entropy-coded data after SOS
            i = data.find(b"\xff", i)
            if i < 0 or i + 1 >= len(data):
                return None
            following = data[i + 1]
            if following == 0x00 or following in _RST or following == 0xFF:
                i += 1 if following == 0xFF else 2
                continue
            break


def split_jpegs(buffer: bytearray) -> list[bytes]:
    """Takes every whole JPEG off the front of `buffer` (a concatenation of them, as image2pipe writes)."""
    pictures = []
    while buffer:
        start = buffer.find(b"\xff\xd8")
        if start < 0:
            del buffer[:-1]
            break
        if start:
            del buffer[:start]
        end = jpeg_end(buffer)
        if end is None:
            if len(buffer) > MAX_PICTURE_BYTES:
                raise ValueError("the decoder wrote a picture larger than allowed")
            break
        pictures.append(bytes(buffer[:end]))
        del buffer[:end]
    return pictures


def ffmpeg_arguments(binary: str, max_width: int) -> list[str]:
    """Raw H.264 from stdin, one JPEG per decoded frame on stdout, no larger than `max_width` across."""
    return [
        binary,
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-threads",
        "1",
        "-fflags",
        "nobuffer",
        "-flags",
        "low_delay",
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-f",
        "h264",
        "-i",
        "pipe:0",
        "-an",
        "-vf",
        f"scale='min({max_width},iw)':-2",
        "-c:v",
        "mjpeg",
        "-q:v",
        "6",
        "-f",
        "image2pipe",
        "pipe:1",
    ]


class FfmpegDecoder:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._buffer = bytearray()
        self._ready: list[bytes] = []

    async def feed(self, data: bytes) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            raise CameraUnavailable("the video decoder stopped")
        try:
            stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise CameraUnavailable("the video decoder stopped") from None

    async def picture(self) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        while not self._ready:
            chunk = await stdout.read(65536)
            if not chunk:
                raise CameraUnavailable("the video decoder stopped")
            self._buffer += chunk
            try:
                self._ready.extend(split_jpegs(self._buffer))
            except ValueError as error:
                raise CameraUnavailable(f"the video decoder: {error}") from None
        return self._ready.pop(0)

    async def stop(self) -> None:
        """Kills the process and reaps it (no zombie left behind)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)


class FfmpegDecoders:
    """At most `limit` ffmpeg processes at once; a camera beyond that gets a clear refusal, not a queue."""

    def __init__(self, limit: int = 4, *, binary: str = "ffmpeg", max_width: int = 1280) -> None:
        self.limit = limit
        self._binary = binary
        self._max_width = max_width
        self._taken = 0
        self.running: set[FfmpegDecoder] = set()
        """The processes alive now (what a test or a metric looks at)."""

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[PictureDecoder]:
        if self._taken >= self.limit:
            raise CameraUnavailable(
                f"the gateway is already decoding {self.limit} cameras (CAMERA_DECODERS); try again when one closes"
            )
        binary = shutil.which(self._binary)
        if binary is None:
            raise CameraUnavailable("the gateway cannot decode H.264 video: ffmpeg is not installed")
        self._taken += 1
        decoder: FfmpegDecoder | None = None
        try:
            process = await asyncio.create_subprocess_exec(
                *ffmpeg_arguments(binary, self._max_width),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
            decoder = FfmpegDecoder(process)
            self.running.add(decoder)
            yield decoder
        finally:
            self._taken -= 1
            if decoder is not None:
                self.running.discard(decoder)
                await asyncio.shield(decoder.stop())
