"""Printer TLS: Bambu's CA bundle ships with the gateway; the certificate must name the serial."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from printer_gateway.adapters.bambu.tls import (
    create_ssl_context,
    default_ca_bundle,
    is_certificate_rejection,
    open_tls_socket,
    shared_ssl_context,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, cn: str, tmp: Path) -> tuple[Path, Path]:
    """Like a printer's: CN = serial, no subjectAltName."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{cn}.crt", tmp / f"{cn}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _handshake(client_context: ssl.SSLContext, cert: Path, key: Path) -> None:
    """Client handshake against an in-process server over a socket pair (no network)."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_sock, server_sock = socket.socketpair()
    client_sock.settimeout(5)
    server_sock.settimeout(5)

    def serve() -> None:
        try:
            with server_context.wrap_socket(server_sock, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    server = threading.Thread(target=serve)
    server.start()
    try:
        with client_context.wrap_socket(client_sock, server_hostname="192.0.2.10") as tls:
            tls.sendall(b"x")
    finally:
        server_sock.close()
        client_sock.close()
        server.join(5)


def test_default_bundle_is_bambus_four_pem_files() -> None:
    bundle = default_ca_bundle()
    assert bundle.count("-----BEGIN CERTIFICATE-----") == 8
    context = create_ssl_context()
    subjects = {str(cert["subject"]) for cert in context.get_ca_certs()}
    assert any("BBL CA2 RSA" in subject for subject in subjects)
    assert any("BBL Device CA N7-V2" in subject for subject in subjects)


def test_context_verifies_the_chain_but_not_the_hostname() -> None:
    context = create_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False
    strict = getattr(ssl, "VERIFY_X509_STRICT", 0)
    assert not context.verify_flags & strict


def test_printer_certificate_with_serial_cn_is_accepted(tmp_path: Path) -> None:
    ca_key, ca = _ca("Test Printer CA")
    cert, key = _leaf(ca_key, ca, "01P00A123456789", tmp_path)
    _handshake(create_ssl_context(_pem(ca), expected_serial="01P00A123456789"), cert, key)
    _handshake(create_ssl_context(_pem(ca)), cert, key)


def test_certificate_naming_another_serial_is_rejected(tmp_path: Path) -> None:
    ca_key, ca = _ca("Test Printer CA")
    cert, key = _leaf(ca_key, ca, "01P00A000000000", tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError) as raised:
        _handshake(create_ssl_context(_pem(ca), expected_serial="01P00A123456789"), cert, key)
    assert is_certificate_rejection(raised.value)


def test_certificate_from_an_unknown_ca_is_rejected(tmp_path: Path) -> None:
    ca_key, ca = _ca("Rogue CA")
    cert, key = _leaf(ca_key, ca, "01P00A123456789", tmp_path)
    with pytest.raises(ssl.SSLError) as raised:
        _handshake(create_ssl_context(expected_serial="01P00A123456789"), cert, key)
    assert is_certificate_rejection(raised.value)


def test_other_errors_are_not_certificate_rejections() -> None:
    assert not is_certificate_rejection(ConnectionRefusedError("refused"))


def test_a_shared_context_expects_one_serial_per_address_while_it_connects() -> None:
    """Fails closed: a handshake outliving its connect, or two serials at one address, is not trusted."""
    context = shared_ssl_context()
    with context.expecting_serial("10.0.0.5", 8883, "01P00A000000001"):
        assert context.serial_at("10.0.0.5", 8883) == "01P00A000000001"
        with pytest.raises(ssl.SSLCertVerificationError):
            context.serial_at("10.0.0.5", 8884)
        with context.expecting_serial("10.0.0.5", 8883, "01P00A000000002"), pytest.raises(ssl.SSLCertVerificationError):
            context.serial_at("10.0.0.5", 8883)
    with pytest.raises(ssl.SSLCertVerificationError):
        context.serial_at("10.0.0.5", 8883)


@contextlib.asynccontextmanager
async def _printer_listening(tmp: Path, serial: str) -> AsyncIterator[tuple[int, ssl.SSLContext]]:
    """A TLS listener on 127.0.0.1 whose certificate names `serial`, answering one byte with the same byte; the port
    and the shared context of its CA."""
    ca_key, ca = _ca("Test Printer CA")
    cert, key = _leaf(ca_key, ca, serial, tmp)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.readexactly(1))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    try:
        yield server.sockets[0].getsockname()[1], shared_ssl_context(_pem(ca))
    finally:
        server.close()
        await server.wait_closed()


async def test_a_tls_connection_opened_on_the_event_loop_is_handshaken_and_non_blocking(tmp_path: Path) -> None:
    async with _printer_listening(tmp_path, "01P00A123456789") as (port, context):
        with context.expecting_serial("127.0.0.1", port, "01P00A123456789"):
            tls = await asyncio.wait_for(open_tls_socket("127.0.0.1", port, context), 10)
        try:
            assert not tls.getblocking()
            assert tls.version() is not None, "handshake done"
            tls.send(b"x")
            loop = asyncio.get_running_loop()
            answered = loop.create_future()
            loop.add_reader(tls.fileno(), lambda: answered.done() or answered.set_result(None))
            try:
                await asyncio.wait_for(answered, 10)
            finally:
                loop.remove_reader(tls.fileno())
            assert tls.recv(1) == b"x"
        finally:
            tls.close()


async def test_a_tls_connection_opened_on_the_event_loop_checks_the_serial(tmp_path: Path) -> None:
    async with _printer_listening(tmp_path, "01P00A000000000") as (port, context):
        with (
            context.expecting_serial("127.0.0.1", port, "01P00A123456789"),
            pytest.raises(ssl.SSLCertVerificationError) as raised,
        ):
            await asyncio.wait_for(open_tls_socket("127.0.0.1", port, context), 10)
        assert is_certificate_rejection(raised.value)


async def test_a_refused_tls_connection_raises_the_connect_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(open_tls_socket("127.0.0.1", port, shared_ssl_context()), 10)
