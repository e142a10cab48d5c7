"""One Bambu printer over LAN MQTT: connect, keep the merged state, report changes, send commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import aiomqtt
from opentelemetry.trace import SpanKind

from printer_gateway.adapters.bambu import ftps, protocol
from printer_gateway.adapters.bambu.camera import CAMERA_PORT, JpegCamera, LiveCamera
from printer_gateway.adapters.bambu.report import (
    CANCELLED_PRINT_ERROR,
    changes_nothing,
    merge_report,
    parse_status,
    print_object,
    report_fingerprint,
)
from printer_gateway.adapters.bambu.rtsps_camera import RtspsCamera
from printer_gateway.adapters.bambu.tls import (
    create_ssl_context,
    is_certificate_rejection,
    open_tls_socket,
    shared_ssl_context,
)
from printer_gateway.adapters.driver import (
    CameraUnavailable,
    CommandRejected,
    CommandTimedOut,
    PrinterCommandError,
    PrinterNotConnected,
    PrintJob,
    StatusListener,
    UploadError,
    check_start_in_time,
    upload_seconds,
)
from printer_gateway.adapters.video import H264Decoders
from printer_gateway.domain.printer_status import PrinterStatus
from servicekit.tracing import span

log = logging.getLogger(__name__)

__all__ = [
    "BambuConnection",
    "BambuPrinterSettings",
    "CommandRejected",
    "CommandTimedOut",
    "DeveloperModeOff",
    "PrinterCommandError",
    "PrinterNotConnected",
    "UploadError",
]

MQTT_USER = "bblp"
WRONG_ACCESS_CODE = "wrong access code"
CERTIFICATE_REJECTED = "certificate rejected"
_AUTH_REFUSED_CODES = frozenset({4, 5, 134, 135})
"""CONNACK 4/5 in MQTT 3.1.1; paho 2 reports them as reason codes 134/135."""
_ACTIVE_STATES = frozenset({"PREPARE", "SLICING", "RUNNING", "PAUSE"})
_ENDED_STATES = frozenset({"IDLE", "FINISH", "FAILED"})


@dataclass(frozen=True)
class BambuPrinterSettings:
    """Where a printer is and how patient to be with it; the access code never appears in repr."""

    serial: str
    host: str
    access_code: str = field(repr=False)
    mqtt_port: int = 8883
    ftp_port: int = ftps.DEFAULT_FTPS_PORT
    ca_pem: str | None = field(default=None, repr=False)
    verify_serial: bool = True
    url_template: str = protocol.FTP_URL_TEMPLATE
    stale_after: float = 60.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 30.0
    refused_retry_interval: float = 120.0
    connect_timeout: float = 15.0
    command_timeout: float = 30.0
    upload_timeout: float = 600.0
    keepalive: int = 30
    camera: Literal["jpeg", "rtsps"] | None = "jpeg"
    """P1/A1: JPEG frames over TLS on `camera_port` (6000); X1/H2: RTSPS on `camera_port` (322)."""
    camera_port: int = CAMERA_PORT


class DeveloperModeOff(CommandRejected):
    pass


class _Stale(Exception):
    pass


class _Refused(Exception):
    """The printer will not let us in until someone fixes its configuration or ours."""


StatusCheck = Callable[[PrinterStatus], bool]


@dataclass
class _PendingCommand:
    command: str
    future: asyncio.Future[protocol.CommandReply | None]
    accepted_by: StatusCheck | None

    def answered_by(self, reply: protocol.CommandReply) -> bool:
        """Other clients (Bambu Studio, Handy) see the same replies; their ids may collide with ours."""
        return not self.future.done() and reply.command in (None, self.command)


class BambuConnection:
    """Keeps one printer connected and its normalized status current; see PRINTERS.md for the protocol."""

    def __init__(
        self,
        settings: BambuPrinterSettings,
        on_status: StatusListener,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        decoders: H264Decoders | None = None,
    ) -> None:
        self._settings = settings
        self._decoders = decoders
        self._on_status = on_status
        self._sleep = sleep
        self._tls: ssl.SSLContext | None = None
        self._ids = protocol.SequenceIds(start=random.randrange(10_000, 1_000_000))
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._cache: dict[str, Any] = {}
        self._last_message: bytes | None = None
        """The fingerprint of the last message handled (`report_fingerprint`), to drop repeats unparsed."""
        self._heard_at = 0.0
        """When the printer last sent anything, repeats included (event-loop time): it is stale after a silence."""
        self._status: PrinterStatus | None = None
        self._config_error: str | None = None
        self._pending: dict[str, _PendingCommand] = {}
        self._version: dict[str, Any] | None = None
        self._reported = False
        self._camera: LiveCamera | None = None
        self._attempted = asyncio.Event()
        self._muted = False
        """Unsubscribed from the reports (`mute_reports`) in this session: silence is not staleness."""
        self._never_mute = False
        """A session ended while muted: perhaps this printer's broker drops a client that unsubscribes. Muting
        only saves CPU, so it is not tried on this printer again."""

    @property
    def attempted(self) -> asyncio.Event:
        return self._attempted

    def _ssl_context(self) -> ssl.SSLContext:
        """The printer's own context, for FTPS (its TLS session resumed on the data channel) and the camera: made
        on first use, not with the connection (MQTT uses the one context of its CA, `_mqtt_tls`)."""
        if self._tls is None:
            settings = self._settings
            self._tls = create_ssl_context(settings.ca_pem, settings.serial if settings.verify_serial else None)
        return self._tls

    @property
    def serial(self) -> str:
        return self._settings.serial

    @property
    def status(self) -> PrinterStatus | None:
        return self._status

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def refusing_control(self) -> bool:
        """The printer answered a command with a configuration refusal (developer mode off)."""
        return self._config_error is not None

    @property
    def version_info(self) -> dict[str, Any] | None:
        """The last `get_version` answer (`module` list with models and firmware versions)."""
        return self._version

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"bambu-{self._settings.serial}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_pending("connection closed")
        if self._camera is not None:
            await self._camera.close()

    async def camera_snapshot(self) -> bytes:
        settings = self._settings
        if settings.camera is None:
            raise CameraUnavailable("this printer has no camera")
        if self._camera is None and settings.camera == "rtsps":
            if self._decoders is None:
                raise CameraUnavailable("this gateway has no H.264 decoder for the model's RTSPS camera")
            self._camera = RtspsCamera(
                settings.host, settings.camera_port, settings.access_code, self._ssl_context(), self._decoders
            )
        elif self._camera is None:
            self._camera = JpegCamera(settings.host, settings.camera_port, settings.access_code, self._ssl_context())
        return await self._camera.snapshot()

    async def print_job(self, job: PrintJob) -> None:
        """The driver port: a sliced `.gcode.3mf` fed from the tray that holds the job's material."""
        status = self._status
        try:
            mapping = protocol.build_ams_mapping(
                [job.material], status.materials if status else (), status.tray_now if status else None
            )
        except protocol.NoMatchingTray as exc:
            raise CommandRejected(str(exc)) from None
        await self.start_print(
            file_name=job.file_name, data=job.data, plate=job.plate, ams_mapping=mapping, subtask_name=job.job_id,
            start_by=job.start_by,
        )

    async def start_print(
        self,
        file_name: str,
        data: bytes,
        plate: str,
        ams_mapping: Sequence[int],
        subtask_name: str,
        start_by: float | None = None,
    ) -> None:
        """Upload then `project_file`; returns once the printer accepted it, else raises with its reason. With
        `start_by` (`PrintJob.start_by`) the upload ends by then and no `project_file` goes after it."""
        self._require_connection()
        check_start_in_time(start_by, file_name)
        settings = self._settings
        try:
            with span(
                "ftps upload",
                kind=SpanKind.CLIENT,
                attributes={"server.address": settings.host, "printfarm.file": file_name, "printfarm.bytes": len(data)},
            ):
                await ftps.upload(
                    host=settings.host,
                    port=settings.ftp_port,
                    access_code=settings.access_code,
                    file_name=file_name,
                    data=data,
                    ssl_context=self._ssl_context(),
                    timeout=upload_seconds(start_by, settings.upload_timeout),
                )
        except (ftps.UploadFailed, ValueError) as error:
            raise UploadError(str(error)) from None
        except TimeoutError:
            raise UploadError(f"upload of {file_name!r} timed out") from None
        except OSError as error:
            reason = CERTIFICATE_REJECTED if is_certificate_rejection(error) else str(error)
            raise UploadError(f"upload of {file_name!r} failed: {reason}") from None
        check_start_in_time(start_by, file_name)
        command = protocol.project_file(
            self._ids.next(),
            file_name=file_name,
            plate=plate,
            subtask_name=subtask_name,
            ams_mapping=ams_mapping,
            url_template=settings.url_template,
        )

        def started(status: PrinterStatus) -> bool:
            return status.gcode_state in _ACTIVE_STATES and status.subtask_name == subtask_name

        with span("mqtt project_file", kind=SpanKind.CLIENT, attributes={"server.address": settings.host}):
            await self._command(command, started)

    async def stop_print(self) -> None:
        await self._command(
            protocol.stop(self._ids.next()),
            lambda s: s.gcode_state in _ENDED_STATES or s.print_error == CANCELLED_PRINT_ERROR,
        )

    async def pause(self) -> None:
        await self._command(protocol.pause(self._ids.next()), lambda s: s.gcode_state == "PAUSE")

    async def resume(self) -> None:
        await self._command(protocol.resume(self._ids.next()), lambda s: s.gcode_state in {"RUNNING", "PREPARE"})

    async def probe_control(self) -> None:
        """A command with no effect on the printer, to learn whether it accepts control again; a
        success clears the refusal, see `_on_reply`."""
        await self._command(protocol.get_accessories(self._ids.next()), None)

    async def request_full_report(self) -> None:
        """Ask for a full report; for a missing field only, P1 printers suffer when polled. A muted printer is
        unmuted, which asks for one itself (not a second)."""
        client = self._require_connection()
        if self._muted:
            await self.unmute_reports()
            return
        await self._publish(client, protocol.pushall(self._ids.next()))

    async def mute_reports(self) -> None:
        """Unsubscribe from the printer's reports, the session kept open (keepalive pings go on): a survivor
        taking over a dead replica's printers spent most of its CPU share reading its own printers' reports
        (TLS, MQTT framing, a JSON fingerprint each, every second). Not while a command waits for its reply,
        which comes on the report topic; a command sent while muted unmutes first."""
        client = self._client
        if client is None or self._muted or self._pending or self._never_mute:
            return
        self._muted = True
        with contextlib.suppress(aiomqtt.MqttError):  # the session is failing: the next one subscribes anew
            await client.unsubscribe(protocol.report_topic(self._settings.serial))

    async def unmute_reports(self) -> None:
        """Subscribe again and ask for a full report: a P1's deltas sent meanwhile were missed."""
        client = self._client
        if not self._muted or client is None:
            return
        self._muted = False
        self._heard_at = asyncio.get_running_loop().time()
        await asyncio.gather(
            client.subscribe(protocol.report_topic(self._settings.serial)),
            self._publish(client, protocol.pushall(self._ids.next())),
        )

    def _require_connection(self) -> aiomqtt.Client:
        if self._client is None:
            raise PrinterNotConnected("printer is not connected")
        return self._client

    async def _command(self, command: dict[str, Any], accepted_by: StatusCheck | None) -> None:
        """Publish and wait for the reply with our sequence id, or for a report showing the effect."""
        client = self._require_connection()
        body = next(iter(command.values()))
        sequence_id = str(body["sequence_id"])
        future: asyncio.Future[protocol.CommandReply | None] = asyncio.get_running_loop().create_future()
        self._pending[sequence_id] = _PendingCommand(str(body["command"]), future, accepted_by)
        try:
            await self.unmute_reports()
            await self._publish(client, command)
            async with asyncio.timeout(self._settings.command_timeout):
                reply = await future
        except TimeoutError:
            raise CommandTimedOut("printer did not acknowledge the command") from None
        except aiomqtt.MqttError as error:
            raise PrinterNotConnected(f"printer connection failed: {error}") from None
        finally:
            self._pending.pop(sequence_id, None)
        if reply is not None and not reply.ok:
            if reply.developer_mode_off:
                raise DeveloperModeOff(reply.failure_reason)
            raise CommandRejected(reply.failure_reason)

    async def _publish(self, client: aiomqtt.Client, message: dict[str, Any]) -> None:
        await client.publish(protocol.request_topic(self._settings.serial), json.dumps(message), qos=1)

    async def _run(self) -> None:
        settings = self._settings
        delay = settings.reconnect_initial
        while True:
            wait = delay
            self._reported = False
            try:
                await self._session()
            except _Stale:
                await self._emit_unreachable("offline", f"no report for {settings.stale_after:g} s")
            except _Refused as refused:
                wait = settings.refused_retry_interval
                await self._emit_unreachable("error", str(refused))
            except (aiomqtt.MqttError, OSError, TimeoutError) as error:
                log.info("printer %s connection lost: %s", settings.serial, _describe(error))
                await self._emit_unreachable("offline", f"connection failed: {_describe(error)}")
            except Exception as error:
                log.exception("printer %s: unexpected failure in the connection loop", settings.serial)
                await self._emit_unreachable("offline", f"connection failed: {_describe(error)}")
            finally:
                self._fail_pending("printer connection lost")
            if self._reported:
                wait = delay = settings.reconnect_initial
            await self._sleep(wait)
            delay = min(delay * 2, settings.reconnect_max)

    def _mqtt_tls(self) -> tuple[ssl.SSLContext, contextlib.AbstractContextManager[None]]:
        """The context MQTT connects with, and what must hold while it does: one context per CA for every
        printer (`shared_ssl_context`), told this printer's serial for the handshake, instead of a context per
        printer whose CAs loaded again (about a millisecond each, 3-4% of a survivor's CPU in a takeover)."""
        settings = self._settings
        if not settings.verify_serial:
            return self._ssl_context(), contextlib.nullcontext()
        shared = shared_ssl_context(settings.ca_pem)
        return shared, shared.expecting_serial(settings.host, settings.mqtt_port, settings.serial)

    async def _session(self) -> None:
        settings = self._settings
        tls_context, expecting_serial = self._mqtt_tls()
        client = aiomqtt.Client(
            settings.host,
            settings.mqtt_port,
            username=MQTT_USER,
            password=settings.access_code,
            identifier=f"printfarm-{uuid.uuid4().hex[:12]}",
            protocol=aiomqtt.ProtocolVersion.V311,
            tls_context=tls_context,
            keepalive=settings.keepalive,
            timeout=settings.command_timeout,
        )
        _gate_reports(client, self._admit)
        _watch_only_current_socket(client)
        try:
            with expecting_serial:
                async with asyncio.timeout(settings.connect_timeout):
                    await _enter_over(client, await open_tls_socket(settings.host, settings.mqtt_port, tls_context))
        except OSError as error:
            if is_certificate_rejection(error):
                raise _Refused(CERTIFICATE_REJECTED) from None
            raise
        except aiomqtt.MqttCodeError as error:
            if _code_of(error) in _AUTH_REFUSED_CODES:
                raise _Refused(WRONG_ACCESS_CODE) from None
            raise
        except aiomqtt.MqttError as error:
            if is_certificate_rejection(error):
                raise _Refused(CERTIFICATE_REJECTED) from None
            raise
        log.info("printer %s connected", settings.serial)
        self._heard_at = asyncio.get_running_loop().time()
        self._attempted.set()
        try:
            self._cache, self._last_message, self._muted = {}, None, False
            self._client = client
            # Sent in this order without waiting for each acknowledgement: the printer handles them in order, so
            # the full report answers a subscription already made, one round trip after the connect, not three.
            await asyncio.gather(
                client.subscribe(protocol.report_topic(settings.serial)),
                self._publish(client, protocol.pushall(self._ids.next())),
                self._publish(client, protocol.get_version(self._ids.next())),
            )
            await self._consume(client)
        finally:
            self._client = None
            self._never_mute = self._never_mute or self._muted
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await client.__aexit__(None, None, None)

    async def _consume(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        stale_after = self._settings.stale_after
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout_at(self._heard_at + stale_after):
                    message = await anext(messages)
            except TimeoutError:
                if self._muted:
                    self._heard_at = loop.time()  # silent because we asked; the keepalive watches the link
                    continue
                if loop.time() >= self._heard_at + stale_after:
                    raise _Stale from None
                continue  # only repeats came, dropped at the gate
            await self._handle(message.payload, admitted=True)

    def _admit(self, payload: bytes) -> bool:
        """The gate of `_gate_reports`: everything heard counts against staleness, only news is queued."""
        self._heard_at = asyncio.get_running_loop().time()
        return not self._repeats(payload)

    def _repeats(self, payload: Any) -> bool:
        """The message says what the last one said (and nothing waits for a reply, which may repeat an earlier one
        but for its sequence id); the last fingerprint moves on otherwise."""
        if not isinstance(payload, bytes):
            return False
        fingerprint = report_fingerprint(payload)
        if fingerprint == self._last_message and self._status is not None and not self._pending:
            return True
        self._last_message = fingerprint
        return False

    async def _handle(self, payload: Any, *, admitted: bool = False) -> None:
        if not admitted and self._repeats(payload):
            return
        try:
            message = json.loads(payload)
        except (TypeError, ValueError):
            log.debug("printer %s sent a non-JSON message", self._settings.serial)
            return
        if not isinstance(message, dict):
            return
        reply = protocol.parse_reply(message)
        if reply is not None:
            await self._on_reply(reply)
            info = message.get("info")
            if reply.command == "get_version" and isinstance(info, dict):
                self._version = info
        body = print_object(message)
        if body is not None:
            self._reported = True
            if self._status is not None and not self._awaiting_status() and changes_nothing(self._cache, body):
                return  # the status it would give is the one already reported
            self._cache = merge_report(self._cache, body)
            await self._publish_status()

    def _awaiting_status(self) -> bool:
        """A command waits for a report showing its effect: every report is normalized and shown to it."""
        return any(p.accepted_by is not None and not p.future.done() for p in self._pending.values())

    async def _on_reply(self, reply: protocol.CommandReply) -> None:
        if reply.developer_mode_off:
            if self._config_error is None:
                log.warning("printer %s rejects commands: %s", self._settings.serial, reply.failure_reason)
            self._config_error = reply.failure_reason
            await self._publish_status()
        elif reply.message_type == "print" and reply.result is not None and self._config_error is not None:
            self._config_error = None
            await self._publish_status()
        pending = self._pending.get(reply.sequence_id)
        if pending is not None and pending.answered_by(reply):
            pending.future.set_result(reply)

    async def _publish_status(self) -> None:
        if "gcode_state" not in self._cache:
            return
        status = parse_status(self._cache)
        if self._config_error is not None:
            status = replace(status, state="error", error_reason=self._config_error)
        await self._emit(status)

    async def _emit_unreachable(self, state: Literal["offline", "error"], reason: str) -> None:
        """Keep the last known job and materials for display; `online=False` says they may be outdated."""
        previous = self._status or PrinterStatus.offline()
        await self._emit(replace(previous, online=False, state=state, error_reason=reason))

    async def _emit(self, status: PrinterStatus) -> None:
        self._attempted.set()
        for pending in self._pending.values():
            if pending.accepted_by is not None and not pending.future.done() and pending.accepted_by(status):
                pending.future.set_result(None)
        if status == self._status:
            return
        self._status = status
        try:
            await self._on_status(status)
        except Exception:
            log.exception("status listener failed for printer %s", self._settings.serial)

    def _fail_pending(self, reason: str) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(PrinterNotConnected(reason))
        self._pending.clear()


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _gate_reports(client: aiomqtt.Client, admit: Callable[[bytes], bool]) -> None:
    """Put `admit` in front of aiomqtt's handler of what paho receives: a report that repeats the last one is dropped
    as paho hands it over, before aiomqtt wraps it in a `Message` (its topic validated again) and queues it for the
    iterator. Most reports of a fleet repeat the last one (an X1's full report every second); wrapping them was a
    tenth of a survivor's CPU in a saturated takeover, taken from the printers being connected. paho's `on_message`
    is public; aiomqtt keeps its paho client in `_client` (both pinned in uv.lock)."""
    paho = client._client
    deliver = paho.on_message
    if deliver is None:
        raise RuntimeError("aiomqtt no longer handles paho's messages through on_message")

    def on_message(paho_client: Any, userdata: Any, message: Any) -> None:
        if admit(message.payload):
            deliver(paho_client, userdata, message)

    paho.on_message = on_message


def _watch_only_current_socket(client: aiomqtt.Client) -> None:
    """Give aiomqtt an event loop that watches a descriptor only while it is still paho's socket. aiomqtt asks the loop
    to watch paho's socket for reading (when it opens) and writing (when it has data to send) by descriptor number,
    from paho's thread (its connect runs on a worker thread) through `call_soon_threadsafe`, and paho may close the
    socket before the loop gets to it (a session ending, a connect failing). The loop then watched a closed
    descriptor (asyncio's ERROR "Bad file descriptor", seen during 10,000-printer runs) or, the number reused
    meanwhile by another printer's new socket, that socket: the dead client's reader or writer replaced that
    printer's own, and, never removed, ran at every turn of the loop while that socket was readable or writable.
    aiomqtt keeps the loop in `_loop` and its paho client in `_client` (both pinned in uv.lock); paho's `socket()` is
    public."""
    setattr(client, "_loop", _CurrentSocketLoop(client._loop, client._client))  # noqa: B010 - a private attribute


class _CurrentSocketLoop:
    """The running event loop as one aiomqtt client uses it: a reader or writer is added only for the descriptor of
    paho's current socket (still open: a closed socket's `fileno()` is -1). Everything else is the loop's own."""

    def __init__(self, loop: asyncio.AbstractEventLoop, paho: Any) -> None:
        self._loop, self._paho = loop, paho

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    def _current(self, descriptor: int) -> bool:
        sock = self._paho.socket()
        return descriptor >= 0 and sock is not None and sock.fileno() == descriptor

    def add_reader(self, descriptor: int, callback: Callable[..., object], *args: Any) -> None:
        if self._current(descriptor):
            self._loop.add_reader(descriptor, callback, *args)

    def add_writer(self, descriptor: int, callback: Callable[..., object], *args: Any) -> None:
        if self._current(descriptor):
            self._loop.add_writer(descriptor, callback, *args)

    def remove_reader(self, descriptor: int) -> bool:
        return descriptor >= 0 and self._loop.remove_reader(descriptor)

    def remove_writer(self, descriptor: int) -> bool:
        return descriptor >= 0 and self._loop.remove_writer(descriptor)


async def _enter_over(client: aiomqtt.Client, sock: ssl.SSLSocket) -> None:
    """`client.__aenter__()` (paho's connect, on aiomqtt's worker thread) over `sock`, a TLS connection already open
    (`open_tls_socket`), instead of the socket paho would open and handshake itself on that thread. Its private
    `_create_socket` is the one seam paho has for it (aiomqtt and paho are pinned in uv.lock; the driver tests speak
    to the simulator through it). Once: a second connect of this client would be given no socket."""
    given = [sock]

    def create_socket() -> ssl.SSLSocket:
        try:
            return given.pop()  # atomic: this runs on aiomqtt's worker thread
        except IndexError:
            raise OSError("this MQTT client's connection was used already or given up") from None

    setattr(client._client, "_create_socket", create_socket)  # noqa: B010 - mypy refuses assigning a method
    try:
        await client.__aenter__()
    except BaseException:
        with contextlib.suppress(IndexError):  # else paho took it, and closes it
            given.pop().close()  # paho never took it (its connect, cancelled, may still run on the worker thread)
        raise


def _code_of(error: aiomqtt.MqttCodeError) -> int | None:
    rc = error.rc
    if isinstance(rc, int):
        return rc
    value = getattr(rc, "value", None)
    return value if isinstance(value, int) else None
