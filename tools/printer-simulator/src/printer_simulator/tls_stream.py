"""The TLS accept-and-serve loop both simulated cameras (the P1/A1 JPEG one and the X1/H2 RTSPS one) run:
listen, keep every connection's handler task so `stop` can end them, and count the clients that are being
streamed to so a fault can drop them all at once."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator


class TlsStreamServer:
    """A TLS server whose subclass serves one connection in `_serve`; the simulated printer sees every camera
    through this face (start, stop, drop_clients and the counters the control API shows)."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.frames_sent = 0
        self.logins_refused = 0

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def client_count(self) -> int:
        """Clients that are being streamed to."""
        return len(self._writers)

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._accept, host, port, ssl=self._ssl, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        self.drop_clients()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    def drop_clients(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    @contextlib.contextmanager
    def _streaming(self, writer: asyncio.StreamWriter) -> Iterator[None]:
        """Counts `writer` among the clients (and the ones `drop_clients` drops) while the block runs."""
        self._writers.add(writer)
        try:
            yield
        finally:
            self._writers.discard(writer)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
