"""The X1/H2 camera: RTSP over TLS to port 322 (the printer's certificate checked like its MQTT one),
`rtsps://bblp:<access code>@<ip>:322/streaming/live/1`, H.264 over RTP interleaved on that connection.

The gateway speaks RTSP itself (OPTIONS, DESCRIBE with the login the camera asks for, SETUP, PLAY) and
hands the video to a decoder (`adapters/video.py`) that turns it into JPEG pictures; the decoder runs only
while someone watches and stops `idle_after` seconds after the last look. Nothing here logs or returns
the access code or a URL that holds it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from printer_gateway.adapters.bambu import rtsp
from printer_gateway.adapters.bambu.camera import LiveCamera
from printer_gateway.adapters.bambu.tls import check_peer_serial
from printer_gateway.adapters.driver import CameraUnavailable
from printer_gateway.adapters.video import H264Decoders, PictureDecoder

RTSPS_PORT = 322
STREAM_PATH = "/streaming/live/1"
USERNAME = "bblp"
KEEPALIVE_SECONDS = 20.0
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024


class RtspsCamera(LiveCamera):
    def __init__(
        self,
        host: str,
        port: int,
        access_code: str,
        ssl_context: ssl.SSLContext,
        decoders: H264Decoders,
        *,
        connect_timeout: float = 10.0,
        idle_after: float = 10.0,
    ) -> None:
        super().__init__(f"rtsps {host}:{port}", connect_timeout=connect_timeout, idle_after=idle_after)
        self._host, self._port, self._ssl, self._decoders = host, port, ssl_context, decoders
        self._credentials = rtsp.Credentials(USERNAME, access_code)
        self._url = f"rtsps://{host}:{port}{STREAM_PATH}"
        self._cseq = 0
        self._challenge: str | None = None

    async def _run(self) -> None:
        writer: asyncio.StreamWriter | None = None
        self._cseq, self._challenge = 0, None
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(self._host, self._port, ssl=self._ssl)
                expected_serial = getattr(self._ssl, "expected_serial", None)
                if expected_serial:
                    check_peer_serial(writer.get_extra_info("peercert"), expected_serial)
                track, session = await self._handshake(reader, writer)
            async with self._decoders.open() as decoder:
                await decoder.feed(rtsp.annex_b(track.parameter_sets))
                pictures = asyncio.create_task(self._pictures(decoder))
                try:
                    await self._play(reader, writer, decoder, session, pictures)
                finally:
                    pictures.cancel()
                    with contextlib.suppress(asyncio.CancelledError, CameraUnavailable):
                        await pictures
                with contextlib.suppress(OSError):
                    writer.write(self._request("TEARDOWN", self._url, {"Session": session}))
                    await writer.drain()
        except asyncio.IncompleteReadError:
            raise CameraUnavailable("the camera closed the stream") from None
        except asyncio.LimitOverrunError:
            raise CameraUnavailable("the camera sent an RTSP answer too long to be one") from None
        finally:
            if writer is not None:
                writer.transport.abort()

    def _request(self, method: str, uri: str, headers: dict[str, str] | None = None) -> bytes:
        self._cseq += 1
        extra = dict(headers or {})
        if self._challenge is not None:
            extra["Authorization"] = self._credentials.authorization(self._challenge, method, uri)
        return rtsp.request(method, uri, self._cseq, extra)

    async def _ask(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        uri: str,
        headers: dict[str, str] | None = None,
    ) -> rtsp.Response:
        """One request; a 401 is answered once with the login the camera asks for (a second 401 means
        the access code is wrong)."""
        answered = False
        while True:
            writer.write(self._request(method, uri, headers))
            await writer.drain()
            response = await self._response(reader)
            if response.status != 401:
                break
            challenge = response.headers.get("www-authenticate")
            if answered or not challenge:
                raise CameraUnavailable("the camera refused the access code")
            self._challenge, answered = challenge, True
        if response.status != 200:
            raise CameraUnavailable(f"the camera answered {method} with {response.status} {response.reason}".strip())
        return response

    async def _response(self, reader: asyncio.StreamReader) -> rtsp.Response:
        """The next RTSP answer, skipping interleaved packets that arrive before it."""
        while True:
            first = await reader.readexactly(1)
            if first == b"$":
                header = await reader.readexactly(3)
                await reader.readexactly(int.from_bytes(header[1:3], "big"))
                continue
            head = first + await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD_BYTES:
                raise ValueError("the camera's answer is too long")
            response = rtsp.parse_response_head(head)
            body = b""
            if response.content_length:
                if response.content_length > MAX_BODY_BYTES:
                    raise ValueError("the camera's answer is too long")
                body = await reader.readexactly(response.content_length)
            return rtsp.Response(response.status, response.reason, response.headers, body)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[rtsp.VideoTrack, str]:
        await self._ask(reader, writer, "OPTIONS", self._url)
        described = await self._ask(reader, writer, "DESCRIBE", self._url, {"Accept": "application/sdp"})
        base = described.headers.get("content-base") or described.headers.get("content-location") or self._url
        track = rtsp.video_track(described.body.decode("utf-8", "replace"), base)
        set_up = await self._ask(
            reader, writer, "SETUP", track.control, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
        )
        session = set_up.headers.get("session", "").split(";")[0].strip()
        if not session:
            raise CameraUnavailable("the camera set up no session")
        await self._ask(reader, writer, "PLAY", self._url, {"Session": session, "Range": "npt=0.000-"})
        return track, session

    async def _play(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: PictureDecoder,
        session: str,
        pictures: asyncio.Task[None],
    ) -> None:
        """Interleaved RTP on channel 0 into the decoder while someone watches; an OPTIONS now and then
        keeps the session alive (its answers are read and dropped)."""
        depacketizer = rtsp.Depacketizer()
        loop = asyncio.get_running_loop()
        kept_alive = loop.time()
        while self._watched():
            if pictures.done():
                pictures.result()  # the decoder stopped: raise why
                raise CameraUnavailable("the video decoder stopped")
            if loop.time() - kept_alive > KEEPALIVE_SECONDS:
                writer.write(self._request("OPTIONS", self._url, {"Session": session}))
                await writer.drain()
                kept_alive = loop.time()
            async with asyncio.timeout(self._connect_timeout):
                first = await reader.readexactly(1)
                if first != b"$":
                    head = first + await reader.readuntil(b"\r\n\r\n")
                    response = rtsp.parse_response_head(head)
                    if response.content_length:
                        await reader.readexactly(min(response.content_length, MAX_BODY_BYTES))
                    continue
                header = await reader.readexactly(3)
                packet = await reader.readexactly(int.from_bytes(header[1:3], "big"))
            if header[0] != 0:
                continue  # RTCP on channel 1
            units = depacketizer.push(packet)
            if units:
                await decoder.feed(rtsp.annex_b(units))

    async def _pictures(self, decoder: PictureDecoder) -> None:
        while True:
            picture = await decoder.picture()
            self._publish(picture)
