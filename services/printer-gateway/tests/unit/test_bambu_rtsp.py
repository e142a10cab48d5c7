"""The X1/H2 camera's RTSP pieces without a network: logins, the SDP, RTP back into NAL units, and the
decoder's JPEG stream cut into pictures."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printer_gateway.adapters.bambu import rtsp
from printer_gateway.adapters.driver import CameraUnavailable
from printer_gateway.adapters.video import FfmpegDecoders, jpeg_end, split_jpegs


def rtp(payload: bytes, sequence: int, *, marker: bool = False) -> bytes:
    return struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 96, sequence & 0xFFFF, 0, 1) + payload


def fu_a(unit: bytes, size: int) -> list[bytes]:
    """RFC 6184 §5.8 by hand: the NAL header split into indicator and FU header, the body in pieces."""
    body = unit[1:]
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    out = []
    for i, piece in enumerate(pieces):
        flags = (0x80 if i == 0 else 0) | (0x40 if i == len(pieces) - 1 else 0)
        out.append(bytes([(unit[0] & 0xE0) | 28, flags | (unit[0] & 0x1F)]) + piece)
    return out


def test_digest_answers_as_rfc_2069_computes_it() -> None:
    # RFC 2069 §2.4's example (its corrected response value), the scheme RTSP servers use without qop.
    assert (
        rtsp.digest_response(
            "Mufasa",
            "CircleOfLife",
            "testrealm@host.com",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
        )
        == "1949323746fe6a43ef61f9606e7febea"
    )
    login = rtsp.Credentials("Mufasa", "CircleOfLife")
    header = login.authorization(
        'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"', "GET", "/dir/index.html"
    )
    assert 'response="1949323746fe6a43ef61f9606e7febea"' in header
    assert "CircleOfLife" not in header


def test_basic_login_and_unknown_schemes() -> None:
    login = rtsp.Credentials("bblp", "12345678")
    assert (
        login.authorization('Basic realm="x"', "DESCRIBE", "rtsps://h/s")
        == "Basic " + base64.b64encode(b"bblp:12345678").decode()
    )
    with pytest.raises(ValueError, match="does not speak"):
        login.authorization('Bearer realm="x"', "DESCRIBE", "rtsps://h/s")
    assert "12345678" not in repr(login)


def test_the_sdp_names_the_track_and_its_parameter_sets() -> None:
    sps, pps = b"\x67\x42\xc0\x1e\xda", b"\x68\xce\x3c\x80"
    sets = ",".join(base64.b64encode(u).decode() for u in (sps, pps))
    sdp = (
        "v=0\r\nm=audio 0 RTP/AVP 0\r\na=control:audio\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sets};profile-level-id=42c01e\r\n"
        "a=control:track1\r\n"
    )
    track = rtsp.video_track(sdp, "rtsps://10.0.0.5:322/streaming/live/1/")
    assert track.control == "rtsps://10.0.0.5:322/streaming/live/1/track1"
    assert track.parameter_sets == (sps, pps)
    absolute = rtsp.video_track(sdp.replace("track1", "rtsps://other/x"), "rtsps://h/")
    assert absolute.control == "rtsps://other/x"
    with pytest.raises(ValueError, match=r"no H\.264"):
        rtsp.video_track("v=0\r\nm=video 0 RTP/AVP 97\r\na=rtpmap:97 H265/90000\r\n", "rtsps://h/")


def test_an_answer_head_is_parsed_and_anything_else_refused() -> None:
    answer = rtsp.parse_response_head(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest a=b\r\n\r\n")
    assert (answer.status, answer.reason, answer.headers["www-authenticate"]) == (401, "Unauthorized", "Digest a=b")
    with pytest.raises(ValueError, match="not RTSP"):
        rtsp.parse_response_head(b"HTTP/1.1 200 OK\r\n\r\n")


@given(
    units=st.lists(st.binary(min_size=2, max_size=3000), min_size=1, max_size=8),
    size=st.integers(min_value=1, max_value=1400),
)
def test_fu_a_fragments_come_back_whole(units: list[bytes], size: int) -> None:
    units = [bytes([0x65])] + [bytes([(u[0] & 0x60) | 0x01]) + u[1:] for u in units]  # an IDR first, then slices
    depacketizer = rtsp.Depacketizer()
    got: list[bytes] = []
    sequence = 65530  # wraps around
    for unit in units:
        for payload in fu_a(unit, size) if len(unit) > size else [unit]:
            got += depacketizer.push(rtp(payload, sequence))
            sequence += 1
    assert got == units
    assert depacketizer.lost == 0


def test_a_lost_fragment_drops_its_unit_only() -> None:
    idr, big, after = b"\x65idr", b"\x41" + bytes(range(200)), b"\x41next"
    depacketizer = rtsp.Depacketizer()
    fragments = fu_a(big, 50)
    out = depacketizer.push(rtp(idr, 1))
    out += depacketizer.push(rtp(fragments[0], 2))
    out += depacketizer.push(rtp(fragments[2], 4))  # 3 is lost
    out += depacketizer.push(rtp(fragments[3], 5))
    out += depacketizer.push(rtp(after, 6))
    assert out == [idr, after]
    assert depacketizer.lost == 1


def test_stap_a_and_waiting_for_the_first_picture_that_stands_alone() -> None:
    depacketizer = rtsp.Depacketizer()
    assert depacketizer.push(rtp(b"\x41p-frame before any key frame", 1)) == []
    sps, pps, idr = b"\x67sps", b"\x68pps", b"\x65idr"
    stap = b"\x78" + b"".join(struct.pack(">H", len(u)) + u for u in (sps, pps))
    assert depacketizer.push(rtp(stap, 2)) == [sps, pps]
    assert depacketizer.push(rtp(idr, 3, marker=True)) == [idr]
    assert rtsp.annex_b([sps, idr]) == b"\x00\x00\x00\x01sps"[:4] + sps + b"\x00\x00\x00\x01" + idr
    with pytest.raises(ValueError, match="not an RTP packet"):
        depacketizer.push(b"\x00" * 12)


def jpeg(marker_in_table: bool, body: bytes) -> bytes:
    """A JPEG's shape: SOI, a table segment (that may hold FF D9), SOS, entropy-coded data with stuffed
    FF 00 and a restart marker, EOI."""
    table = b"\x00\x01\xff\xd9\x02" if marker_in_table else b"\x00\x01\x02\x03\x04"
    segment = b"\xff\xdb" + struct.pack(">H", len(table) + 2) + table
    sos = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + segment + sos + body + b"\xff\x00\x12\xff\xd0\x34" + b"\xff\xd9"


@given(
    bodies=st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\xff", b"\xff\x00")), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=40),
)
def test_pictures_are_cut_where_they_end_however_the_pipe_splits_them(bodies: list[bytes], cuts: list[int]) -> None:
    pictures = [jpeg(i % 2 == 0, body) for i, body in enumerate(bodies)]
    stream = b"".join(pictures)
    buffer, got, at = bytearray(), [], 0
    for cut in [*cuts, len(stream)]:
        buffer += stream[at : at + cut]
        at += cut
        got += split_jpegs(buffer)
    assert got == pictures
    assert not buffer


def test_a_picture_not_all_there_waits_and_a_broken_one_is_refused() -> None:
    picture = jpeg(True, b"abc")
    assert jpeg_end(picture) == len(picture)
    assert jpeg_end(picture[:-1]) is None
    with pytest.raises(ValueError):
        jpeg_end(b"\x00\x00")


async def test_without_ffmpeg_or_a_free_slot_there_is_no_decoder_and_the_reason_says_why() -> None:
    with pytest.raises(CameraUnavailable, match="ffmpeg is not installed"):
        async with FfmpegDecoders(1, binary="printfarm-no-such-ffmpeg").open():
            pass
    with pytest.raises(CameraUnavailable, match="already decoding 0 cameras"):
        async with FfmpegDecoders(0).open():
            pass
