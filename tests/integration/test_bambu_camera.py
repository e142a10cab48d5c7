"""Bambu cameras: the gateway's camera clients against the simulator's cameras at the wire level (P1/A1:
TLS, the 80-byte login, JPEG frames; X1/H2: RTSPS with its login, H.264 decoded by the real ffmpeg), and
the live view through the API, where the access code never shows."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import Stack
from printer_gateway.adapters.bambu.camera import JpegCamera, is_jpeg
from printer_gateway.adapters.bambu.rtsps_camera import RtspsCamera
from printer_gateway.adapters.bambu.tls import create_ssl_context
from printer_gateway.adapters.driver import CameraUnavailable
from printer_gateway.adapters.video import FfmpegDecoders
from printer_simulator.catalog import parse_printer
from printer_simulator.fleet import Fleet
from printer_simulator.printer import SimulatedPrinter
from printer_simulator.rtsps import RtspsCameraServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (Debian package ffmpeg; `make test-tools`)"
)
WaitUntil = Callable[..., Awaitable[Any]]

P1S = {"name": "p1s", "serial": "01P09A3A1900009", "model": "P1S", "access_code": "22222222"}
X1C = {"name": "x1c", "serial": "00M09A350100009", "model": "X1C", "access_code": "33333333"}


async def sim_printer(tmp_path: Path, spec: dict[str, str]) -> tuple[Fleet, SimulatedPrinter]:
    fleet = Fleet(tmp_path / "sim", report_interval=0.2)
    printer = await fleet.add_printer(parse_printer(spec))
    assert isinstance(printer, SimulatedPrinter)
    return fleet, printer


async def test_the_camera_client_gets_fresh_jpeg_frames(tmp_path: Path) -> None:
    fleet, printer = await sim_printer(tmp_path, P1S)
    camera = JpegCamera(printer.host, printer.camera_port, "22222222", create_ssl_context(fleet.ca_pem, P1S["serial"]))
    try:
        first = await camera.snapshot()
        assert is_jpeg(first) and b"printfarm simulator frame" in first
        for _ in range(50):
            await asyncio.sleep(0.05)
            second = await camera.snapshot()
            if second != first:
                break
        assert second != first, "a later snapshot is a later frame"
        assert printer.snapshot()["camera"]["clients"] == 1, "one stream, however many snapshots"
    finally:
        await camera.close()
        await fleet.stop()


async def test_a_wrong_access_code_or_certificate_gives_no_picture(tmp_path: Path) -> None:
    fleet, printer = await sim_printer(tmp_path, P1S)
    wrong_code = JpegCamera(
        printer.host, printer.camera_port, "99999999", create_ssl_context(fleet.ca_pem, P1S["serial"])
    )
    wrong_serial = JpegCamera(printer.host, printer.camera_port, "22222222", create_ssl_context(fleet.ca_pem, "OTHER"))
    try:
        with pytest.raises(CameraUnavailable, match="closed the stream"):
            await wrong_code.snapshot(timeout=5)
        assert printer.snapshot()["camera"]["logins_refused"] == 1
        with pytest.raises(CameraUnavailable, match="certificate"):
            await wrong_serial.snapshot(timeout=5)
    finally:
        await wrong_code.close()
        await wrong_serial.close()
        await fleet.stop()


async def test_the_live_view_comes_through_the_api_without_the_access_code(
    stack: Stack, api: httpx.AsyncClient, wait_until: object
) -> None:
    printers = {p["name"]: p for p in (await api.get("/api/v1/printers?limit=500")).json()["items"]}
    p1s, voron = printers["p1s-01"], printers["voron-01"]
    assert stack.sim is not None
    assert p1s["camera_port"] == stack.sim.printer("p1s-01").camera_port

    async def picture() -> httpx.Response | None:
        reply = await api.get(f"/api/v1/printers/{p1s['id']}/camera")
        return reply if reply.status_code == 200 else None

    reply = None
    for _ in range(100):
        reply = await picture()
        if reply is not None:
            break
        await asyncio.sleep(0.1)
    assert reply is not None, "no camera picture within 10 s"
    assert reply.headers["content-type"] == "image/jpeg" and is_jpeg(reply.content)
    assert stack.sim.printer("p1s-01").access_code.encode() not in reply.content
    assert reply.headers["cache-control"] == "no-store"

    klipper = await api.get(f"/api/v1/printers/{voron['id']}/camera")
    assert klipper.status_code == 409 and klipper.headers["content-type"].startswith("application/problem+json")
    missing = await api.get("/api/v1/printers/00000000-0000-0000-0000-000000000000/camera")
    assert missing.status_code == 404


def jpeg_size(picture: bytes) -> tuple[int, int]:
    """Width and height from the picture's SOF segment."""
    i = 2
    while i + 4 <= len(picture):
        marker, length = picture[i + 1], struct.unpack_from(">H", picture, i + 2)[0]
        if 0xC0 <= marker <= 0xC3:
            height, width = struct.unpack_from(">HH", picture, i + 5)
            return width, height
        i += 2 + length
    raise AssertionError("no SOF segment")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@needs_ffmpeg
async def test_an_x1c_camera_decodes_to_fresh_pictures_and_its_decoder_stops_when_nobody_watches(
    tmp_path: Path, wait_until: WaitUntil
) -> None:
    fleet, printer = await sim_printer(tmp_path, X1C)
    decoders = FfmpegDecoders(2)
    camera = RtspsCamera(
        printer.host,
        printer.camera_port,
        X1C["access_code"],
        create_ssl_context(fleet.ca_pem, X1C["serial"]),
        decoders,
        idle_after=1.0,
    )
    try:
        first = await camera.snapshot(timeout=20)
        assert is_jpeg(first) and jpeg_size(first) == (640, 360), "the simulator's clip, decoded"
        seen = {first}
        for _ in range(60):
            await asyncio.sleep(0.05)
            seen.add(await camera.snapshot(timeout=20))
            if len(seen) > 2:
                break
        assert len(seen) > 2, "later snapshots are later frames (the box moves)"
        assert printer.snapshot()["camera"]["clients"] == 1, "one RTSP session, however many snapshots"
        assert len(decoders.running) == 1
        (decoder,) = decoders.running
        pid = decoder.process.pid
        assert alive(pid)

        await wait_until(lambda: not decoders.running, 15, "the decoder to stop once nobody asks for a picture")
        await wait_until(lambda: not alive(pid), 5, "the ffmpeg process to be gone")
        await wait_until(lambda: printer.snapshot()["camera"]["clients"] == 0, 5, "the RTSP session to close")
        assert not camera.streaming
        again = await camera.snapshot(timeout=20)
        assert is_jpeg(again), "watching again opens the stream again"
    finally:
        await camera.close()
        assert not decoders.running, "closing the camera stops its decoder"
        await fleet.stop()


@needs_ffmpeg
async def test_an_x1c_refuses_a_wrong_access_code_or_certificate(tmp_path: Path) -> None:
    fleet, printer = await sim_printer(tmp_path, X1C)
    decoders = FfmpegDecoders(2)
    wrong_code = RtspsCamera(
        printer.host, printer.camera_port, "99999999", create_ssl_context(fleet.ca_pem, X1C["serial"]), decoders
    )
    wrong_serial = RtspsCamera(
        printer.host, printer.camera_port, X1C["access_code"], create_ssl_context(fleet.ca_pem, "OTHER"), decoders
    )
    try:
        with pytest.raises(CameraUnavailable, match="refused the access code"):
            await wrong_code.snapshot(timeout=10)
        assert printer.snapshot()["camera"]["logins_refused"] == 1
        assert printer.snapshot()["camera"]["frames_sent"] == 0
        with pytest.raises(CameraUnavailable, match="certificate"):
            await wrong_serial.snapshot(timeout=10)
        assert not decoders.running, "no decoder runs for a stream that never played"
    finally:
        await wrong_code.close()
        await wrong_serial.close()
        await fleet.stop()


@needs_ffmpeg
async def test_basic_login_works_too_and_decoders_are_bounded(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "sim", report_interval=0.2)
    server = RtspsCameraServer(fleet.ca.server_context(X1C["serial"]), X1C["access_code"], auth="basic")
    port = await server.start("127.0.0.1", 0)
    decoders = FfmpegDecoders(1)
    context = create_ssl_context(fleet.ca_pem, X1C["serial"])
    first = RtspsCamera("127.0.0.1", port, X1C["access_code"], context, decoders)
    second = RtspsCamera("127.0.0.1", port, X1C["access_code"], context, decoders)
    wrong = RtspsCamera("127.0.0.1", port, "00000000", context, decoders)
    try:
        assert is_jpeg(await first.snapshot(timeout=20))
        with pytest.raises(CameraUnavailable, match="already decoding 1 camera"):
            await second.snapshot(timeout=10)
        assert len(decoders.running) == 1
        with pytest.raises(CameraUnavailable, match="refused the access code"):
            await wrong.snapshot(timeout=10)
        assert server.logins_refused == 1
    finally:
        for camera in (first, second, wrong):
            await camera.close()
        await server.stop()


@needs_ffmpeg
async def test_the_simulated_stream_plays_in_ffmpeg_as_a_client(tmp_path: Path) -> None:
    """An RTSP client the project did not write reads the simulator's camera: its RTSP is the standard."""
    fleet, printer = await sim_printer(tmp_path, X1C)
    url = f"rtsps://bblp:{X1C['access_code']}@{printer.host}:{printer.camera_port}/streaming/live/1"
    try:
        process = await asyncio.create_subprocess_exec(
            *("ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url),
            *("-frames:v", "3", "-f", "image2", str(tmp_path / "frame-%d.jpg")),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, errors = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, errors.decode(errors="replace")
        assert all(is_jpeg((tmp_path / f"frame-{n}.jpg").read_bytes()) for n in (1, 2, 3))
    finally:
        await fleet.stop()


@needs_ffmpeg
async def test_an_x1c_live_view_through_the_api_and_a_wrong_access_code_is_a_clear_409(
    stack: Stack, api: httpx.AsyncClient, wait_until: WaitUntil
) -> None:
    assert stack.sim is not None
    printers = {p["name"]: p for p in (await api.get("/api/v1/printers?limit=500")).json()["items"]}
    x1c = printers["x1c-01"]
    assert x1c["camera_port"] == stack.sim.printer("x1c-01").camera_port
    code = stack.sim.printer("x1c-01").access_code

    async def picture() -> httpx.Response | None:
        reply = await api.get(f"/api/v1/printers/{x1c['id']}/camera")
        assert reply.status_code in (200, 409), reply.text
        return reply if reply.status_code == 200 else None

    reply = await wait_until(picture, 30, "a picture from the X1C's RTSPS camera")
    assert reply.headers["content-type"] == "image/jpeg" and is_jpeg(reply.content)
    assert jpeg_size(reply.content) == (640, 360)
    assert reply.headers["cache-control"] == "no-store"
    assert code.encode() not in reply.content

    async with httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30, trust_env=False) as control:
        added = await control.post(
            "/printers", json={"name": "x1c-wrong-code", "serial": "00M09A350100077", "model": "X1C"}
        )
        assert added.status_code == 201, added.text
        sim = added.json()
        wrong_code = "0" + sim["access_code"][1:] if sim["access_code"][0] != "0" else "1" + sim["access_code"][1:]
        registered = await api.post(
            "/api/v1/printers",
            json={
                "name": "x1c-wrong-code",
                "model": "X1C",
                "protocol": "bambu_lan",
                "host": sim["host"],
                "port": sim["port"],
                "ftp_port": sim["ftp_port"],
                "camera_port": sim["camera_port"],
                "serial": sim["serial"],
                "access_code": wrong_code,
                "ca_cert": sim["ca_cert"],
            },
        )
        assert registered.status_code == 201, registered.text
        printer_id = registered.json()["id"]
        try:

            async def refused() -> httpx.Response | None:
                answer = await api.get(f"/api/v1/printers/{printer_id}/camera")
                assert answer.status_code == 409, answer.text
                return answer if "refused the access code" in answer.json()["detail"] else None

            problem = await wait_until(refused, 30, "the camera's refusal of a wrong access code")
            assert problem.headers["content-type"].startswith("application/problem+json")
            assert (await control.get("/printers/00M09A350100077")).json()["camera"]["logins_refused"] >= 1
            for secret in (wrong_code, sim["access_code"], code):
                assert secret not in problem.text
                assert secret not in registered.text
        finally:
            assert (await api.delete(f"/api/v1/printers/{printer_id}")).status_code == 204
            await control.delete("/printers/00M09A350100077")

    logs = "".join(
        i.process.log_path.read_text(errors="replace")
        for i in stack.instances.values()
        if i.spec.name in ("printer_gateway", "api_gateway")
    )
    assert "took printer" in logs, "the gateways' logs were read"
    for secret in (wrong_code, sim["access_code"], code):
        assert secret not in logs, "an access code reached a gateway log"
