"""A Bambu printer's face on the LAN: its MQTT broker (TLS, `bblp` + access code), implicit-FTPS server and
camera, started, stopped and dropped together. The ports they got are kept, so going back online reuses them."""

from __future__ import annotations

from collections.abc import Callable

from printer_simulator.camera import CameraServer
from printer_simulator.catalog import PrinterSpec
from printer_simulator.certs import TestCertificateAuthority
from printer_simulator.ftps import FtpsServer
from printer_simulator.mqtt import BrokerHooks, MqttBroker
from printer_simulator.rtsps import RtspsCameraServer


class LanServers:
    """Nothing listens before `start`; until then the printer is offline with no clients."""

    def __init__(
        self,
        spec: PrinterSpec,
        *,
        host: str,
        ca: TestCertificateAuthority,
        files: dict[str, bytes],
        on_request: Callable[[str, bytes], None],
        on_subscribe: Callable[[], None],
        on_upload: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self.host = host
        self.mqtt_port = spec.mqtt_port
        self.ftp_port = spec.ftp_port
        self.camera_port = spec.camera_port
        self.report_topic = f"device/{spec.serial}/report"
        self.broker: MqttBroker | None = None
        self.camera: CameraServer | RtspsCameraServer | None = None
        self._ftps: FtpsServer | None = None
        self._ca = ca
        self._files = files
        self._on_request = on_request
        self._on_subscribe = on_subscribe
        self._on_upload = on_upload

    @property
    def started(self) -> bool:
        return self.broker is not None

    @property
    def online(self) -> bool:
        return self.broker is not None and self.broker.listening

    @property
    def connected_clients(self) -> int:
        return self.broker.client_count if self.broker is not None else 0

    @property
    def subscribers(self) -> int:
        """MQTT clients subscribed to the report topic."""
        return len(self.broker.subscribers) if self.broker is not None else 0

    def publish(self, payload: bytes) -> None:
        if self.broker is not None:
            self.broker.publish(payload)

    async def start(self) -> None:
        """Makes the servers (with the printer's own certificate) and listens; ports 0 become free ports."""
        ssl_context = self._ca.server_context(self.spec.serial)
        self.broker = MqttBroker(
            report_topic=self.report_topic,
            hooks=BrokerHooks(self._authenticate, self._on_request, self._on_subscribe),
            ssl_context=ssl_context,
        )
        self._ftps = FtpsServer(
            ssl_context=ssl_context, access_code=self.spec.access_code, files=self._files, on_upload=self._on_upload
        )
        if self.spec.has_jpeg_camera:
            self.camera = CameraServer(ssl_context, self.spec.access_code)
        elif self.spec.has_rtsps_camera:
            self.camera = RtspsCameraServer(ssl_context, self.spec.access_code)
        await self.listen()

    async def listen(self) -> None:
        assert self.broker is not None and self._ftps is not None
        self.mqtt_port = await self.broker.start(self.host, self.mqtt_port)
        try:
            self.ftp_port = await self._ftps.start(self.host, self.ftp_port)
            if self.camera is not None:
                self.camera_port = await self.camera.start(self.host, self.camera_port)
        except OSError:
            await self.broker.stop()
            await self._ftps.stop()
            raise

    async def unlisten(self) -> None:
        if self.broker is not None:
            await self.broker.stop()
        if self._ftps is not None:
            await self._ftps.stop()
        if self.camera is not None:
            await self.camera.stop()

    def drop_clients(self) -> None:
        """Closes every client's TCP connection; the servers keep listening."""
        if self.broker is not None:
            self.broker.drop_clients()
        if self._ftps is not None:
            self._ftps.drop_clients()
        if self.camera is not None:
            self.camera.drop_clients()

    def _authenticate(self, username: str | None, password: bytes | None) -> bool:
        return username == "bblp" and password is not None and password == self.spec.access_code.encode()
