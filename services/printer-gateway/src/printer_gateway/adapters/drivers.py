"""Which driver speaks to a printer, by its registered protocol: the one place that knows them all."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from printer_gateway.adapters.bambu.camera import CAMERA_PORT
from printer_gateway.adapters.bambu.connection import BambuConnection, BambuPrinterSettings
from printer_gateway.adapters.bambu.rtsps_camera import RTSPS_PORT
from printer_gateway.adapters.driver import PrinterDriver, StatusListener
from printer_gateway.adapters.moonraker.connection import MoonrakerConnection
from printer_gateway.adapters.octoprint.connection import OctoPrintConnection
from printer_gateway.adapters.prusalink.connection import PrusaLinkConnection
from printer_gateway.adapters.reconnecting import HttpPrinterSettings
from printer_gateway.adapters.video import H264Decoders
from printer_gateway.config import Settings
from printer_gateway.domain.model import Printer


def use_blocking_io_threads(count: int) -> None:
    """Give the running loop's default executor `count` threads: aiomqtt runs paho's connect there (the TCP
    connect and the whole TLS handshake block a thread), and FTPS uploads too. asyncio's own default is the
    CPU count + 4, six on a 2-core host: at most six connects at once whatever `TAKEOVER_CONNECTS` said, and
    an upload or two beside a takeover took slots from it. (On the 2-core dev machine, saturated, the
    handshakes wait on starved printer simulators, and a survivor's waves of 32 took 2.3-3 s with either size.)"""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(count, thread_name_prefix="printer-io"))


def bambu_camera_kind(model: str) -> Literal["jpeg", "rtsps"] | None:
    """P1 and A1 printers stream JPEG frames on port 6000; X1, X2, H2 and P2 stream RTSPS on 322."""
    code = re.sub(r"[^A-Z0-9]", "", model.upper()).removeprefix("BAMBULAB")
    if code.startswith(("P1", "A1")):
        return "jpeg"
    if code.startswith(("X1", "X2", "H2", "P2")):
        return "rtsps"
    return None


def make_driver(
    printer: Printer,
    secret: str,
    settings: Settings,
    on_status: StatusListener,
    decoders: H264Decoders | None = None,
) -> PrinterDriver:
    """A driver for `printer`, not started yet; `secret` is its decrypted access code or API key;
    `decoders` turn an X1/H2 camera's video into pictures."""
    if printer.protocol == "bambu_lan":
        camera = bambu_camera_kind(printer.model)
        return BambuConnection(
            BambuPrinterSettings(
                serial=printer.serial or "",
                host=printer.host,
                access_code=secret,
                mqtt_port=printer.port,
                ftp_port=printer.ftp_port,
                ca_pem=printer.ca_cert,
                url_template=settings.bambu_url_template,
                stale_after=settings.stale_after_seconds,
                camera=camera,
                camera_port=printer.camera_port or (RTSPS_PORT if camera == "rtsps" else CAMERA_PORT),
            ),
            on_status,
            decoders=decoders,
        )
    http = HttpPrinterSettings(
        host=printer.host,
        port=printer.port,
        api_key=secret,
        stale_after=settings.stale_after_seconds,
        poll_interval=settings.http_poll_seconds,
    )
    if printer.protocol == "moonraker":
        return MoonrakerConnection(http, on_status)
    if printer.protocol == "prusalink":
        return PrusaLinkConnection(http, on_status)
    if printer.protocol == "octoprint":
        return OctoPrintConnection(http, on_status)
    raise ValueError(f"no driver for protocol {printer.protocol!r}")
