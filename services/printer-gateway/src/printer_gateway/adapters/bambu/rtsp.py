"""RTSP client pieces for the X1/H2 camera (RFC 2326, RTP/H.264 per RFC 6184), kept free of I/O so they
are tested alone: requests and their answers, Basic and Digest logins, the SDP's parameter sets, and
RTP packets back into H.264 NAL units."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass, field

START_CODE = b"\x00\x00\x00\x01"
_AUTH_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')
NAL_IDR, NAL_SPS, NAL_PPS, NAL_STAP_A, NAL_FU_A = 5, 7, 8, 24, 28


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_length(self) -> int:
        return int(self.headers.get("content-length", "0") or 0)


def parse_response_head(head: bytes) -> Response:
    """The status line and headers (names lower-cased) of an answer, up to its blank line."""
    lines = head.decode("utf-8", "replace").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("RTSP/") or not parts[1].isdigit():
        raise ValueError("the camera's answer is not RTSP")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


def request(method: str, uri: str, cseq: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {cseq}", "User-Agent: printfarm-printer-gateway"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def auth_params(challenge: str) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _AUTH_PARAM.finditer(challenge)
    }


@dataclass(frozen=True)
class Credentials:
    """The login the camera asks for; `authorization` answers its challenge for one request."""

    username: str
    password: str = field(repr=False)

    def authorization(self, challenge: str, method: str, uri: str) -> str:
        scheme, _, rest = challenge.strip().partition(" ")
        if scheme.lower() == "basic":
            return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if scheme.lower() != "digest":
            raise ValueError(f"the camera asks for a login the gateway does not speak ({scheme})")
        params = auth_params(rest)
        realm, nonce = params.get("realm", ""), params.get("nonce", "")
        if params.get("algorithm", "MD5").upper() != "MD5" or "qop" in params:
            raise ValueError("the camera asks for a Digest variant the gateway does not speak")
        response = digest_response(self.username, self.password, realm, nonce, method, uri)
        return (
            f'Digest username="{self.username}", realm="{realm}", nonce="{nonce}", uri="{uri}", response="{response}"'
        )


def digest_response(username: str, password: str, realm: str, nonce: str, method: str, uri: str) -> str:
    """RFC 2617 §3.2.2.1 without qop (what RTSP servers ask for)."""
    ha1 = hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    return hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()


@dataclass(frozen=True)
class VideoTrack:
    control: str
    """The track's URL for SETUP (absolute, or relative to the content base)."""
    parameter_sets: tuple[bytes, ...] = ()
    """SPS and PPS from `sprop-parameter-sets`: fed to the decoder before the first frame."""


def video_track(sdp: str, base: str) -> VideoTrack:
    """The first H.264 video track of a session description."""
    in_video = False
    control, h264 = "", False
    sets: list[bytes] = []
    payload_types: set[str] = set()
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if in_video and h264:
                break
            in_video = line.startswith("m=video")
            payload_types = set(line.split()[3:]) if in_video else set()
            control, sets, h264 = "", [], False
        elif in_video and line.startswith("a=rtpmap:"):
            pt, _, codec = line[len("a=rtpmap:") :].partition(" ")
            h264 = h264 or (pt in payload_types and codec.upper().startswith("H264/"))
        elif in_video and line.startswith("a=control:"):
            control = line[len("a=control:") :]
        elif in_video and line.startswith("a=fmtp:") and "sprop-parameter-sets=" in line:
            value = line.split("sprop-parameter-sets=", 1)[1].split(";", 1)[0]
            sets = [base64.b64decode(part) for part in value.split(",") if part]
    if not (in_video and h264):
        raise ValueError("the camera offers no H.264 video")
    if not control or control == "*":
        url = base
    elif "://" in control:
        url = control
    else:
        url = base.rstrip("/") + "/" + control
    return VideoTrack(url, tuple(sets))


class Depacketizer:
    """RTP payloads (RFC 6184: single NAL units, STAP-A, FU-A) back into NAL units; a fragmented unit
    with a packet missing is dropped, and nothing is passed on until the first IDR or SPS."""

    def __init__(self) -> None:
        self._fragments: list[bytes] | None = None
        self._expected: int | None = None
        self._started = False
        self.lost = 0

    def push(self, packet: bytes) -> list[bytes]:
        """One RTP packet; returns the NAL units it completes."""
        if len(packet) < 12 or packet[0] >> 6 != 2:
            raise ValueError("not an RTP packet")
        csrc_count = packet[0] & 0x0F
        offset = 12 + 4 * csrc_count
        if packet[0] & 0x10:  # header extension
            if len(packet) < offset + 4:
                raise ValueError("truncated RTP header extension")
            (words,) = struct.unpack_from(">H", packet, offset + 2)
            offset += 4 + 4 * words
        end = len(packet)
        if packet[0] & 0x20:  # padding
            end -= packet[-1]
        (sequence,) = struct.unpack_from(">H", packet, 2)
        if self._expected is not None and sequence != self._expected:
            self.lost += (sequence - self._expected) & 0xFFFF
            self._fragments = None
        self._expected = (sequence + 1) & 0xFFFF
        return self._started_units(self._units(packet[offset:end]))

    def _started_units(self, units: list[bytes]) -> list[bytes]:
        if not self._started:
            for i, unit in enumerate(units):
                if unit[0] & 0x1F in (NAL_IDR, NAL_SPS):
                    self._started = True
                    return units[i:]
            return []
        return units

    def _units(self, payload: bytes) -> list[bytes]:
        if not payload:
            return []
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            return [payload]
        if kind == NAL_STAP_A:
            units, i = [], 1
            while i + 2 <= len(payload):
                (size,) = struct.unpack_from(">H", payload, i)
                unit = payload[i + 2 : i + 2 + size]
                if len(unit) != size or not size:
                    raise ValueError("truncated STAP-A packet")
                units.append(unit)
                i += 2 + size
            return units
        if kind == NAL_FU_A:
            if len(payload) < 2:
                raise ValueError("truncated FU-A packet")
            header = payload[1]
            if header & 0x80:
                self._fragments = [bytes([(payload[0] & 0xE0) | (header & 0x1F)]), payload[2:]]
            elif self._fragments is not None:
                self._fragments.append(payload[2:])
            if header & 0x40 and self._fragments is not None:
                unit, self._fragments = b"".join(self._fragments), None
                return [unit]
            return []
        return []  # STAP-B, MTAP, FU-B: not sent by these cameras


def annex_b(units: list[bytes] | tuple[bytes, ...]) -> bytes:
    """NAL units as the byte stream a decoder reads."""
    return b"".join(START_CODE + unit for unit in units)
