"""The X1/H2 camera as the printers serve it: RTSP over TLS (port 322 on hardware, the printer's own
certificate as for MQTT), `rtsps://bblp:<access code>@<ip>:322/streaming/live/1`, H.264 video.

A client asks OPTIONS (no login needed), then DESCRIBE, SETUP and PLAY, each with the access code: Digest
(RFC 2617, MD5) by default, Basic when the server is made with `auth="basic"`. A wrong code is answered 401
again and counted. Video goes as RTP (RFC 6184: single NAL units, FU-A fragments for large ones)
interleaved on the same TCP connection (RFC 2326 §10.12); UDP transport is refused with 461.

The picture is a 2-second test clip of the test card with a box moving across it, looped at 5 frames per
second, each loop starting with an IDR frame and its SPS/PPS. It was made with:

    ffmpeg -loop 1 -framerate 5 -i camera_test_card.jpg -f lavfi -i "color=c=orange:s=32x32:r=5" -t 2 \\
      -filter_complex "[0][1]overlay=x='40+n*56':y=322:eval=frame,format=yuv420p" -c:v libx264 \\
      -profile:v baseline -preset veryfast -tune zerolatency -g 5 -bf 0 -crf 32 -threads 1 \\
      -x264-params repeat-headers=1 -f h264 camera_test_clip.h264"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import secrets
import ssl
import struct
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from printer_simulator.tls_stream import TlsStreamServer

log = logging.getLogger(__name__)

PATH = "/streaming/live/1"
USERNAME = "bblp"
REALM = "printfarm simulated camera"
FRAME_RATE = 5
CLOCK_RATE = 90_000
PAYLOAD_TYPE = 96
MAX_RTP_PAYLOAD = 1400
MAX_REQUEST_BYTES = 16 * 1024
_AUTH_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')


def camera_clip() -> bytes:
    return resources.files("printer_simulator").joinpath("camera_test_clip.h264").read_bytes()


def split_nal_units(stream: bytes) -> list[bytes]:
    """An H.264 Annex B byte stream's NAL units, without their start codes."""
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", stream)]
    units = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(stream)
        unit = stream[start:end]
        if i + 1 < len(starts) and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the leading zero of the next 4-byte start code
        if unit:
            units.append(unit)
    return units


def access_units(stream: bytes) -> list[list[bytes]]:
    """NAL units grouped per frame: parameter sets and SEI go with the slice that follows them (the
    clip has one slice per frame)."""
    frames: list[list[bytes]] = []
    pending: list[bytes] = []
    for unit in split_nal_units(stream):
        pending.append(unit)
        if unit[0] & 0x1F in (1, 5):
            frames.append(pending)
            pending = []
    return frames


def rtp_payloads(unit: bytes, max_payload: int = MAX_RTP_PAYLOAD) -> list[bytes]:
    """One NAL unit as RTP payloads: itself when it fits, else FU-A fragments (RFC 6184 §5.8)."""
    if len(unit) <= max_payload:
        return [unit]
    indicator = (unit[0] & 0xE0) | 28
    kind = unit[0] & 0x1F
    body = unit[1:]
    chunk = max_payload - 2
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    payloads = []
    for i, piece in enumerate(pieces):
        header = kind | (0x80 if i == 0 else 0) | (0x40 if i == len(pieces) - 1 else 0)
        payloads.append(bytes([indicator, header]) + piece)
    return payloads


def rtp_packet(payload: bytes, *, sequence: int, timestamp: int, ssrc: int, marker: bool) -> bytes:
    return (
        struct.pack(
            ">BBHII",
            0x80,
            (0x80 if marker else 0) | PAYLOAD_TYPE,
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )


def interleaved(channel: int, packet: bytes) -> bytes:
    return b"$" + bytes([channel]) + struct.pack(">H", len(packet)) + packet


def sdp(frames: list[list[bytes]], host: str) -> str:
    """The session description, with the clip's parameter sets as `sprop-parameter-sets`."""
    sps = next(u for f in frames for u in f if u[0] & 0x1F == 7)
    pps = next(u for f in frames for u in f if u[0] & 0x1F == 8)
    sprop = ",".join(base64.b64encode(u).decode() for u in (sps, pps))
    return (
        "v=0\r\n"
        f"o=- {secrets.randbelow(10**9)} 1 IN IP4 {host}\r\n"
        "s=printfarm simulated camera\r\n"
        "t=0 0\r\n"
        "m=video 0 RTP/AVP 96\r\n"
        "c=IN IP4 0.0.0.0\r\n"
        f"a=rtpmap:96 H264/{CLOCK_RATE}\r\n"
        f"a=fmtp:96 packetization-mode=1;profile-level-id={sps[1:4].hex()};sprop-parameter-sets={sprop}\r\n"
        f"a=framerate:{FRAME_RATE}\r\n"
        "a=control:track1\r\n"
    )


def digest_response(username: str, password: str, realm: str, nonce: str, method: str, uri: str) -> str:
    ha1 = hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    return hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()


def auth_params(header: str) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _AUTH_PARAM.finditer(header)
    }


@dataclass
class Request:
    method: str
    uri: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def cseq(self) -> str:
        return self.headers.get("cseq", "0")


async def read_request(reader: asyncio.StreamReader, first: bytes) -> Request:
    head = first + await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_REQUEST_BYTES:
        raise ValueError("request too long")
    lines = head.decode("utf-8", "replace").split("\r\n")
    method, uri, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length:
        await reader.readexactly(min(length, MAX_REQUEST_BYTES))
    return Request(method.upper(), uri, headers)


class RtspsCameraServer(TlsStreamServer):
    """Same face as the P1/A1 `CameraServer` (both are `TlsStreamServer`s), so the simulated printer runs
    whichever camera its model has."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        access_code: str,
        *,
        auth: Literal["digest", "basic"] = "digest",
        frame_rate: float = FRAME_RATE,
    ) -> None:
        super().__init__(ssl_context)
        self._access_code = access_code
        self._auth = auth
        self._interval = 1 / frame_rate
        self._frames = access_units(camera_clip())
        self._host = "127.0.0.1"

    async def start(self, host: str, port: int) -> int:
        self._host = host
        return await super().start(host, port)

    def _authorized(self, request: Request, nonce: str) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, rest = header.partition(" ")
        if self._auth == "basic":
            if scheme.lower() != "basic":
                return False
            with contextlib.suppress(ValueError):
                return base64.b64decode(rest.strip(), validate=True) == f"{USERNAME}:{self._access_code}".encode()
            return False
        if scheme.lower() != "digest":
            return False
        params = auth_params(rest)
        if params.get("username") != USERNAME or params.get("nonce") != nonce or params.get("realm") != REALM:
            return False
        expected = digest_response(USERNAME, self._access_code, REALM, nonce, request.method, params.get("uri", ""))
        return secrets.compare_digest(params.get("response", ""), expected)

    def _challenge(self, nonce: str) -> str:
        if self._auth == "basic":
            return f'Basic realm="{REALM}"'
        return f'Digest realm="{REALM}", nonce="{nonce}"'

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonce = secrets.token_hex(16)
        session = secrets.token_hex(8)
        player: asyncio.Task[None] | None = None
        set_up = False

        def answer(request: Request, status: str, headers: dict[str, str] | None = None, body: str = "") -> None:
            lines = [f"RTSP/1.0 {status}", f"CSeq: {request.cseq}", "Server: printfarm-simulator"]
            lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
            if body:
                lines.append(f"Content-Length: {len(body.encode())}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n" + body).encode())

        try:
            while True:
                first = await asyncio.wait_for(reader.readexactly(1), 60)
                if first == b"$":  # the client's RTCP reports: read and ignore
                    _channel, size = struct.unpack(">BH", await reader.readexactly(3))
                    await reader.readexactly(size)
                    continue
                request = await asyncio.wait_for(read_request(reader, first), 10)
                if request.method == "OPTIONS":
                    answer(request, "200 OK", {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"})
                elif not self._authorized(request, nonce):
                    if "authorization" in request.headers:
                        self.logins_refused += 1
                    answer(request, "401 Unauthorized", {"WWW-Authenticate": self._challenge(nonce)})
                elif request.method == "DESCRIBE":
                    if not request.uri.rstrip("/").endswith(PATH):
                        answer(request, "404 Not Found")
                    else:
                        answer(
                            request,
                            "200 OK",
                            {"Content-Type": "application/sdp", "Content-Base": request.uri.rstrip("/") + "/"},
                            sdp(self._frames, self._host),
                        )
                elif request.method == "SETUP":
                    transport = request.headers.get("transport", "")
                    if "RTP/AVP/TCP" not in transport.upper():
                        answer(request, "461 Unsupported Transport")
                    else:
                        set_up = True
                        answer(
                            request,
                            "200 OK",
                            {
                                "Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
                                "Session": f"{session};timeout=60",
                            },
                        )
                elif request.method == "PLAY":
                    if not set_up or request.headers.get("session", "").split(";")[0] != session:
                        answer(request, "454 Session Not Found")
                    else:
                        answer(request, "200 OK", {"Session": session, "Range": "npt=0.000-"})
                        await writer.drain()
                        if player is None:
                            player = asyncio.create_task(self._play(writer))
                elif request.method == "TEARDOWN":
                    answer(request, "200 OK", {"Session": session})
                    await writer.drain()
                    return
                else:
                    answer(request, "405 Method Not Allowed", {"Allow": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"})
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            return
        except asyncio.CancelledError:
            return
        finally:
            if player is not None:
                player.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await player
            writer.transport.abort()

    async def _play(self, writer: asyncio.StreamWriter) -> None:
        """The clip in a loop, one frame per interval, on interleaved channel 0."""
        with self._streaming(writer):
            ssrc = secrets.randbits(32)
            sequence = secrets.randbits(16)
            timestamp = secrets.randbits(32)
            step = int(CLOCK_RATE * self._interval)
            loop = asyncio.get_running_loop()
            due = loop.time()
            try:
                while True:
                    for frame in self._frames:
                        for index, unit in enumerate(frame):
                            payloads = rtp_payloads(unit)
                            for part, payload in enumerate(payloads):
                                last = index == len(frame) - 1 and part == len(payloads) - 1
                                packet = rtp_packet(
                                    payload, sequence=sequence, timestamp=timestamp, ssrc=ssrc, marker=last
                                )
                                writer.write(interleaved(0, packet))
                                sequence += 1
                        await writer.drain()
                        self.frames_sent += 1
                        timestamp += step
                        due += self._interval
                        await asyncio.sleep(max(0.0, due - loop.time()))
            except (OSError, ConnectionError):
                writer.transport.abort()
