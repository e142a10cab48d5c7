"""A database out of reach is a 503 to retry, never a 500: a refused socket and a server that is starting up,
each met by a real asyncpg connect (servicekit.database, servicekit.problems)."""

from __future__ import annotations

import asyncio
import socket
import struct

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from servicekit.database import create_engine, out_of_reach
from servicekit.problems import install_problem_handlers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def starting_up_server() -> tuple[asyncio.Server, int]:
    """A server that answers a PostgreSQL client as PostgreSQL does while it starts up: no TLS ('N' to the
    SSLRequest), then, to the startup message, a FATAL ErrorResponse with SQLSTATE 57P03."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = struct.unpack("!i", await reader.readexactly(4))[0]
                body = await reader.readexactly(length - 4)
                if struct.unpack("!i", body[:4])[0] == 80877103:  # SSLRequest
                    writer.write(b"N")
                    continue
                fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
                writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
                await writer.drain()
                break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def app_over(url: str) -> FastAPI:
    """A service's shape in small: its problem handlers and a route that reads through a servicekit engine."""
    engine = create_engine(url)
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/count")
    async def count() -> dict[str, int]:
        async with engine.connect() as conn:
            return {"n": int((await conn.execute(sa.text("SELECT 1"))).scalar_one())}

    app.state.engine = engine
    return app


async def get_count(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.get("/count")
    finally:
        await app.state.engine.dispose()


async def test_a_refused_database_connection_is_a_503_to_retry() -> None:
    app = app_over(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/db")
    reply = await get_count(app)
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert "Connection refused" not in reply.text


async def test_a_database_starting_up_is_a_503_to_retry() -> None:
    server, port = await starting_up_server()
    try:
        app = app_over(f"postgresql+asyncpg://u:p@127.0.0.1:{port}/db")
        reply = await get_count(app)
    finally:
        server.close()
        await server.wait_closed()
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert "starting up" not in reply.text


async def test_a_refusal_by_a_server_that_answers_is_not_called_out_of_reach() -> None:
    """A wrong password is a fault to fix, not a moment to wait out."""
    import asyncpg

    assert not out_of_reach(asyncpg.exceptions.InvalidPasswordError("password authentication failed"))
    assert out_of_reach(RuntimeError("wrapped")) is False
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise RuntimeError("adapted") from exc
    except RuntimeError as wrapped:
        assert out_of_reach(wrapped)
