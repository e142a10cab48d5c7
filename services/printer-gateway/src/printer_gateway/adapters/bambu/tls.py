"""TLS for Bambu printers: their certificates chain to Bambu's own CA and name the serial, not the host."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
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
        expected = getattr(self.context, "expected_serial", None)
        if expected:
            check_peer_serial(self.getpeercert(), expected)


class PrinterSSLContext(ssl.SSLContext):
    """An SSL context that also knows which serial the printer's certificate must name."""

    expected_serial: str | None = None
    sslsocket_class = PrinterCertificateSocket


def create_ssl_context(ca_pem: str | None = None, expected_serial: str | None = None) -> ssl.SSLContext:
    """Verify the chain against `ca_pem` (default: Bambu's CAs); hostnames are IPs, so no hostname check."""
    context = PrinterSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_pem if ca_pem is not None else default_ca_bundle())
    strict = getattr(ssl, "VERIFY_X509_STRICT", None)
    if strict is not None:
        context.verify_flags &= ~strict
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.expected_serial = expected_serial
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
