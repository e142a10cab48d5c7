"""Bambu P1/A1 cameras: the gateway's camera client against the simulator's camera (TLS, the 80-byte
login, JPEG frames), and the live view through the API, where the access code never shows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from devstack import Stack
from printer_gateway.adapters.bambu.camera import JpegCamera, is_jpeg
from printer_gateway.adapters.bambu.tls import create_ssl_context
from printer_gateway.adapters.driver import CameraUnavailable
from printer_simulator.catalog import parse_printer
from printer_simulator.fleet import Fleet
from printer_simulator.printer import SimulatedPrinter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

P1S = {"name": "p1s", "serial": "01P09A3A1900009", "model": "P1S", "access_code": "22222222"}


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
    p1s, x1c, voron = printers["p1s-01"], printers["x1c-01"], printers["voron-01"]
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

    rtsps = await api.get(f"/api/v1/printers/{x1c['id']}/camera")
    assert rtsps.status_code == 409 and "RTSPS" in rtsps.json()["detail"]
    klipper = await api.get(f"/api/v1/printers/{voron['id']}/camera")
    assert klipper.status_code == 409 and klipper.headers["content-type"].startswith("application/problem+json")
    missing = await api.get("/api/v1/printers/00000000-0000-0000-0000-000000000000/camera")
    assert missing.status_code == 404
