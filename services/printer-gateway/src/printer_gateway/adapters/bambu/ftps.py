"""Uploading a sliced file to a Bambu printer over implicit FTPS (TLS from the first byte, port 990)."""

from __future__ import annotations

import asyncio
import ftplib
import socket
import ssl
from typing import Any

DEFAULT_FTPS_PORT = 990
FTPS_USER = "bblp"
_DRAIN_SECONDS = 5.0


class UploadFailed(Exception):
    """The printer did not accept the file, or stored a different number of bytes than sent."""


class ImplicitFtpTls(ftplib.FTP_TLS):
    """`FTP_TLS` speaks explicit FTPS (AUTH TLS); Bambu printers want TLS before the greeting."""

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: tuple[str, int] | None = None,
    ) -> str:
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        if source_address is not None:
            self.source_address = source_address
        raw = socket.create_connection((self.host, self.port), self.timeout, source_address=self.source_address)
        try:
            self.sock = self.context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        """X1/P1 refuse a data channel that does not resume the control channel's TLS session."""
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            control: Any = self.sock
            try:
                conn = self.context.wrap_socket(conn, server_hostname=self.host, session=control.session)
            except BaseException:
                conn.close()
                raise
        return conn, size


def _end_without_unwrap(conn: socket.socket, drain_timeout: float) -> None:
    """Printers never answer a TLS close_notify, so end the upload with a plain TCP FIN instead.

    Whatever the server sent meanwhile (TLS 1.3 session tickets) is read and dropped first: closing
    a socket with unread input sends a reset, and the server may then lose the end of the file.
    """
    conn.shutdown(socket.SHUT_WR)  # on an SSLSocket this also detaches TLS: later reads are raw
    conn.settimeout(drain_timeout)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def _check_file_name(file_name: str) -> None:
    if not file_name or "/" in file_name or any(ch in file_name for ch in "\r\n\0"):
        raise ValueError(f"invalid printer file name {file_name!r}")


def upload_blocking(
    *,
    host: str,
    port: int,
    access_code: str,
    file_name: str,
    data: bytes,
    ssl_context: ssl.SSLContext,
    timeout: float,
) -> None:
    """Store `data` as `/<file_name>` and confirm its size; each socket operation bounded by `timeout`."""
    _check_file_name(file_name)
    ftp = ImplicitFtpTls(context=ssl_context, timeout=timeout)
    try:
        ftp.connect(host, port)
        ftp.login(FTPS_USER, access_code)
        ftp.prot_p()
        ftp.set_pasv(True)
        ftp.voidcmd("TYPE I")
        conn, _ = ftp.ntransfercmd(f"STOR {file_name}")
        try:
            view = memoryview(data)
            for start in range(0, len(view), 256 * 1024):
                conn.sendall(view[start : start + 256 * 1024])
            _end_without_unwrap(conn, min(timeout, _DRAIN_SECONDS))
        finally:
            conn.close()
        ftp.voidresp()
        stored = ftp.size(file_name)
        if stored != len(data):
            raise UploadFailed(f"printer stored {stored} bytes of {file_name!r}, expected {len(data)}")
    except ftplib.Error as error:
        raise UploadFailed(f"FTPS upload of {file_name!r} refused: {error}") from None
    except EOFError:
        raise UploadFailed(f"printer closed the FTPS connection during the upload of {file_name!r}") from None
    finally:
        _close_quietly(ftp)


def _close_quietly(ftp: ftplib.FTP) -> None:
    if ftp.sock is None:
        return
    try:
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        ftp.close()


async def upload(
    *,
    host: str,
    access_code: str,
    file_name: str,
    data: bytes,
    ssl_context: ssl.SSLContext,
    port: int = DEFAULT_FTPS_PORT,
    timeout: float = 300.0,
) -> None:
    """Async wrapper: ftplib runs in a worker thread, the whole upload bounded by `timeout`."""
    await asyncio.wait_for(
        asyncio.to_thread(
            upload_blocking,
            host=host,
            port=port,
            access_code=access_code,
            file_name=file_name,
            data=data,
            ssl_context=ssl_context,
            timeout=min(timeout, 60.0),
        ),
        timeout,
    )
