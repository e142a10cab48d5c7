"""TLS for Bambu printers: their certificates chain to Bambu's own CA and name the serial, not the host."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

_CERTS_PACKAGE = "printer_gateway.adapters.bambu"
_CERTS_DIR = "certs"
_VERIFY_FAILED = "certificate verify failed"


@functools.cache
def default_ca_bundle() -> str:
    """Bambu Lab's public root and device CAs shipped with the gateway: the trust anchors of real printers."""
    certs = resources.files(_CERTS_PACKAGE).joinpath(_CERTS_DIR)
    pems = sorted((entry for entry in certs.iterdir() if entry.name.endswith(".pem")), key=lambda e: e.name)
    bundle = "\n".join(entry.read_text(encoding="ascii").strip() for entry in pems)
    if not bundle:
        raise RuntimeError("the Bambu CA bundle is missing from the gateway package")
    return bundle + "\n"


class PrinterCertificateSocket(ssl.SSLSocket):
    """Checks after the handshake that the peer certificate's CN is the printer's serial."""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        context = self.context
        if isinstance(context, SharedPrinterSSLContext):
            check_peer_serial(self.getpeercert(), context.serial_at(self.server_hostname, self.getpeername()[1]))
            return
        expected = getattr(context, "expected_serial", None)
        if expected:
            check_peer_serial(self.getpeercert(), expected)


class PrinterSSLContext(ssl.SSLContext):
    """An SSL context that also knows which serial the printer's certificate must name."""

    expected_serial: str | None = None
    sslsocket_class = PrinterCertificateSocket


def create_ssl_context(ca_pem: str | None = None, expected_serial: str | None = None) -> ssl.SSLContext:
    """Verify the chain against `ca_pem` (default: Bambu's CAs); hostnames are IPs, so no hostname check."""
    context = PrinterSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _configure(context, ca_pem)
    context.expected_serial = expected_serial
    return context


def _configure(context: ssl.SSLContext, ca_pem: str | None) -> None:
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_pem if ca_pem is not None else default_ca_bundle())
    strict = getattr(ssl, "VERIFY_X509_STRICT", None)
    if strict is not None:
        context.verify_flags &= ~strict
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN


class SharedPrinterSSLContext(PrinterSSLContext):
    """One context for every printer of a CA, told which serial each printer's address must name while its
    connection opens (`expecting_serial`): aiomqtt (paho) wraps the socket itself, with the host it was given
    as `server_hostname`, so the handshake knows the printer by its host and port, not by its context."""

    def __init__(self, protocol: int = ssl.PROTOCOL_TLS_CLIENT) -> None:
        # `protocol` is taken by `ssl.SSLContext.__new__`; Python passes the constructor's arguments here too.
        super().__init__()
        self._serials: dict[tuple[str, int], list[str]] = {}
        self._serials_lock = threading.Lock()

    @contextlib.contextmanager
    def expecting_serial(self, host: str, port: int, serial: str) -> Iterator[None]:
        """While a connection to `host`:`port` opens, its certificate must name `serial`."""
        with self._serials_lock:
            self._serials.setdefault((host, port), []).append(serial)
        try:
            yield
        finally:
            with self._serials_lock:
                serials = self._serials[(host, port)]
                serials.remove(serial)
                if not serials:
                    del self._serials[(host, port)]

    def serial_at(self, host: str | None, port: int) -> str:
        """The serial a connection to `host`:`port` expects. Fails closed: with none expected (the connect
        outlived its wait), or two printers configured at one address with different serials opening at once
        (which is which cannot be told), the certificate is rejected."""
        with self._serials_lock:
            serials = set(self._serials.get((host or "", port), ()))
        if len(serials) != 1:
            raise ssl.SSLCertVerificationError(
                f"{_VERIFY_FAILED}: no single printer serial expected at {host}:{port} ({len(serials)})"
            )
        return serials.pop()


@functools.lru_cache(maxsize=256)
def shared_ssl_context(ca_pem: str | None = None) -> SharedPrinterSSLContext:
    """One context per CA, shared by every printer's MQTT connection, each checking its own serial: a context
    per printer loaded its CAs again (about a millisecond, 3-4% of a survivor's CPU in a takeover) and held a
    copy of them per printer."""
    context = SharedPrinterSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _configure(context, ca_pem)
    return context


def check_peer_serial(peer_cert: Mapping[str, Any] | None, expected_serial: str) -> None:
    common_names = [value for rdn in (peer_cert or {}).get("subject", ()) for key, value in rdn if key == "commonName"]
    if expected_serial not in common_names:
        raise ssl.SSLCertVerificationError(
            f"{_VERIFY_FAILED}: certificate CN {common_names!r} is not the printer serial {expected_serial!r}"
        )


def is_certificate_rejection(error: BaseException) -> bool:
    """True when a connection failed because the printer's certificate did not verify."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or _VERIFY_FAILED in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


async def open_tls_socket(host: str, port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A TCP connection and its TLS handshake made on the running event loop, not on a thread: aiomqtt runs paho's
    blocking connect and handshake on a worker thread, and on a saturated CPU a takeover's 32 threads and the event
    loop passed the GIL back and forth at every step of every handshake (a survivor's connects then finished in
    waves, seconds apart). The socket is returned non-blocking, handshake done (the certificate checked as
    `context` checks it), for paho to speak MQTT on (`BambuConnection._session`)."""
    loop = asyncio.get_running_loop()
    failed: OSError | None = None
    for family, kind, proto, _, address in await _addresses(loop, host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as error:
            sock.close()
            failed = error
            continue
        except BaseException:
            sock.close()
            raise
        tls: ssl.SSLSocket | None = None
        try:
            tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
            await _handshake(loop, tls)
        except BaseException:
            (tls or sock).close()  # the wrapped socket holds the connection once made
            raise
        return tls
    raise failed or OSError(f"no address for {host}")


async def _addresses(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[Any]:
    """An IP literal (every Bambu printer's host) without `getaddrinfo`, which the loop also runs on a thread."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return list(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]


async def _handshake(loop: asyncio.AbstractEventLoop, tls: ssl.SSLSocket) -> None:
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            await _ready(loop, tls, write=False)
        except ssl.SSLWantWriteError:
            await _ready(loop, tls, write=True)


async def _ready(loop: asyncio.AbstractEventLoop, sock: socket.socket, *, write: bool) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
