"""Implicit FTPS (TLS from the first byte), the way a Bambu printer takes uploads on port 990."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import ssl
from collections.abc import Callable

log = logging.getLogger(__name__)

_DATA_TIMEOUT = 30.0
_IDLE_TIMEOUT = 300.0
_DEFAULT_DIRS = frozenset({"", "cache", "model", "timelapse"})


class _DataChannel:
    """One passive-mode listener waiting for the client's data connection."""

    def __init__(self) -> None:
        self.connection: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.get_running_loop().create_future()
        )
        self.server: asyncio.Server | None = None

    async def open(self, host: str, ssl_context: ssl.SSLContext | None) -> int:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.connection.done():
                writer.close()
            else:
                self.connection.set_result((reader, writer))

        self.server = await asyncio.start_server(accepted, host, 0, ssl=ssl_context)
        return int(self.server.sockets[0].getsockname()[1])

    async def accept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(asyncio.shield(self.connection), _DATA_TIMEOUT)
        finally:
            self.close_listener()

    def close_listener(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def discard(self) -> None:
        self.close_listener()
        if self.connection.done() and not self.connection.cancelled():
            self.connection.result()[1].close()
        else:
            self.connection.cancel()


async def _close_data(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 3.0)


class FtpsServer:
    """Files land in ``files`` (the printer's SD card root), keyed by path without a leading slash."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        access_code: str,
        files: dict[str, bytes],
        on_upload: Callable[[str], None] | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self._access_code = access_code
        self.files = files
        self.dirs: set[str] = set(_DEFAULT_DIRS)
        self._on_upload = on_upload
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, ssl=self.ssl_context, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def drop_clients(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.drop_clients()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        session = _FtpSession(self, reader, writer)
        try:
            await session.run()
        except (ConnectionError, ssl.SSLError, TimeoutError, ValueError) as exc:
            log.debug("FTPS session ended: %s", exc)
        finally:
            session.discard_data()
            self._writers.discard(writer)
            writer.close()

    def check_password(self, password: str) -> bool:
        return password == self._access_code

    def uploaded(self, path: str) -> None:
        if self._on_upload is not None:
            self._on_upload(path)


class _FtpSession:
    def __init__(self, server: FtpsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self._user: str | None = None
        self._logged_in = False
        self._protected = False
        self._cwd = ""
        self._data: _DataChannel | None = None

    async def reply(self, text: str) -> None:
        self._writer.write(text.encode() + b"\r\n")
        await self._writer.drain()

    async def run(self) -> None:
        await self.reply("220 Service ready for new user.")
        while True:
            line = await asyncio.wait_for(self._reader.readline(), _IDLE_TIMEOUT)
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if verb == "QUIT":
                await self.reply("221 Goodbye.")
                return
            await self._dispatch(verb, arg)

    def discard_data(self) -> None:
        if self._data is not None:
            self._data.discard()
            self._data = None

    def _resolve(self, arg: str) -> str:
        path = posixpath.normpath(posixpath.join("/" + self._cwd, arg or "."))
        return path.lstrip("/")

    async def _dispatch(self, verb: str, arg: str) -> None:
        if verb == "USER":
            self._user, self._logged_in = arg, False
            await self.reply("331 User name okay, need password.")
            return
        if verb == "PASS":
            if self._user == "bblp" and self._server.check_password(arg):
                self._logged_in = True
                await self.reply("230 User logged in, proceed.")
            else:
                await self.reply("530 Login incorrect.")
            return
        if verb in ("FEAT", "SYST", "NOOP", "PBSZ", "PROT", "OPTS", "AUTH"):
            await self._session_command(verb, arg)
            return
        if not self._logged_in:
            await self.reply("530 Please login with USER and PASS.")
            return
        handler = _HANDLERS.get(verb)
        if handler is None:
            await self.reply(f"502 Command {verb} not implemented.")
            return
        await handler(self, arg)

    async def _session_command(self, verb: str, arg: str) -> None:
        if verb == "FEAT":
            await self.reply("211-Features:\r\n PASV\r\n EPSV\r\n SIZE\r\n PBSZ\r\n PROT\r\n UTF8\r\n211 End")
        elif verb == "SYST":
            await self.reply("215 UNIX Type: L8")
        elif verb == "NOOP":
            await self.reply("200 NOOP ok.")
        elif verb == "PBSZ":
            await self.reply("200 PBSZ=0")
        elif verb == "PROT":
            level = arg.strip().upper()
            if level == "P":
                self._protected = True
                await self.reply("200 Protection level set to P.")
            elif level == "C":
                self._protected = False
                await self.reply("200 Protection level set to C.")
            else:
                await self.reply("536 Requested PROT level not supported.")
        elif verb == "OPTS":
            await self.reply("200 OK.")
        else:  # AUTH on an implicit-TLS connection
            await self.reply("534 Already using TLS.")

    # handlers -------------------------------------------------------------------------------
    async def _type(self, arg: str) -> None:
        await self.reply(f"200 Type set to {arg.strip().upper() or 'I'}.")

    async def _pwd(self, arg: str) -> None:
        await self.reply(f'257 "/{self._cwd}" is the current directory.')

    async def _cwd_cmd(self, arg: str) -> None:
        path = self._resolve(arg)
        if path in self._server.dirs or any(name.startswith(path + "/") for name in self._server.files):
            self._cwd = path
            await self.reply("250 Directory changed.")
        else:
            await self.reply("550 No such directory.")

    async def _cdup(self, arg: str) -> None:
        await self._cwd_cmd("..")

    async def _mkd(self, arg: str) -> None:
        path = self._resolve(arg)
        self._server.dirs.add(path)
        await self.reply(f'257 "/{path}" created.')

    async def _open_data(self) -> int:
        self.discard_data()
        channel = _DataChannel()
        host = str(self._writer.get_extra_info("sockname")[0])
        port = await channel.open(host, self._server.ssl_context if self._protected else None)
        self._data = channel
        return port

    async def _pasv(self, arg: str) -> None:
        port = await self._open_data()
        host = str(self._writer.get_extra_info("sockname")[0]).replace(".", ",")
        await self.reply(f"227 Entering Passive Mode ({host},{port >> 8},{port & 0xFF}).")

    async def _epsv(self, arg: str) -> None:
        port = await self._open_data()
        await self.reply(f"229 Entering Extended Passive Mode (|||{port}|).")

    async def _take_data(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        channel, self._data = self._data, None
        if channel is None:
            await self.reply("425 Use PASV or EPSV first.")
            return None
        await self.reply("150 Opening data connection.")
        try:
            return await channel.accept()
        except TimeoutError:
            channel.discard()
            await self.reply("425 Can't open data connection.")
            return None

    async def _stor(self, arg: str) -> None:
        path = self._resolve(arg)
        if not path or path in self._server.dirs:
            await self.reply("553 File name not allowed.")
            return
        data = await self._take_data()
        if data is None:
            return
        reader, writer = data
        chunks: list[bytes] = []
        try:
            while chunk := await reader.read(1 << 18):
                chunks.append(chunk)
        except (ConnectionError, ssl.SSLError) as exc:
            # Clients told to skip the TLS unwrap after STOR just close the socket.
            log.debug("data connection ended without TLS shutdown: %s", exc)
        await _close_data(writer)
        self._server.files[path] = b"".join(chunks)
        self._server.uploaded(path)
        await self.reply("226 Transfer complete.")

    async def _retr(self, arg: str) -> None:
        content = self._server.files.get(self._resolve(arg))
        if content is None:
            await self.reply("550 File not found.")
            return
        await self._send_data(content)

    async def _send_data(self, content: bytes) -> None:
        data = await self._take_data()
        if data is None:
            return
        _, writer = data
        try:
            writer.write(content)
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            await _close_data(writer)
            await self.reply("426 Connection closed; transfer aborted.")
            return
        await _close_data(writer)
        await self.reply("226 Transfer complete.")

    def _listing(self, arg: str) -> list[tuple[str, int | None]]:
        target = self._resolve("" if arg.startswith("-") else arg)
        if target in self._server.files:
            return [(posixpath.basename(target), len(self._server.files[target]))]
        prefix = target + "/" if target else ""
        entries: dict[str, int | None] = {}
        for directory in self._server.dirs:
            if directory and posixpath.dirname(directory) == target:
                entries[posixpath.basename(directory)] = None
        for name, content in self._server.files.items():
            if name.startswith(prefix):
                first, _, rest = name[len(prefix) :].partition("/")
                entries[first] = None if rest else len(content)
        return sorted(entries.items())

    async def _list(self, arg: str) -> None:
        lines = []
        for name, size in self._listing(arg):
            if size is None:
                lines.append(f"drwxr-xr-x 1 root root 0 Jan 01 00:00 {name}")
            else:
                lines.append(f"-rw-r--r-- 1 root root {size} Jan 01 00:00 {name}")
        await self._send_data("".join(line + "\r\n" for line in lines).encode())

    async def _nlst(self, arg: str) -> None:
        await self._send_data("".join(f"{name}\r\n" for name, _ in self._listing(arg)).encode())

    async def _size(self, arg: str) -> None:
        content = self._server.files.get(self._resolve(arg))
        await self.reply(f"213 {len(content)}" if content is not None else "550 File not found.")

    async def _dele(self, arg: str) -> None:
        if self._server.files.pop(self._resolve(arg), None) is None:
            await self.reply("550 File not found.")
        else:
            await self.reply("250 File deleted.")


_HANDLERS = {
    "TYPE": _FtpSession._type,
    "PWD": _FtpSession._pwd,
    "XPWD": _FtpSession._pwd,
    "CWD": _FtpSession._cwd_cmd,
    "CDUP": _FtpSession._cdup,
    "MKD": _FtpSession._mkd,
    "PASV": _FtpSession._pasv,
    "EPSV": _FtpSession._epsv,
    "STOR": _FtpSession._stor,
    "RETR": _FtpSession._retr,
    "LIST": _FtpSession._list,
    "NLST": _FtpSession._nlst,
    "SIZE": _FtpSession._size,
    "DELE": _FtpSession._dele,
}
