"""HTTP to the services: one pooled httpx client, streaming both ways, failures named by service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from typing import Any, Literal

import httpx

from servicekit.domain_errors import DomainError
from servicekit.tracing import inject

ServiceHealth = Literal["ok", "degraded", "unavailable"]


def with_trace_context(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The service's span continues the gateway's (which continued the client's, if it sent one)."""
    context = inject({})
    if not context:
        return headers
    return [(k, v) for k, v in headers if k.lower() not in context] + list(context.items())


class UpstreamUnavailable(DomainError):
    """A service behind the gateway did not answer: the client may retry shortly."""

    status, title = 503, "Service unavailable"

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(
            f"the {service} service {reason}; try again shortly",
            extra={"service": service},
            headers={"Retry-After": "2"},
        )
        self.service, self.reason = service, reason


POOL_IDLE_SECONDS = 30.0
"""An idle pooled connection is dropped after this: well before the services close theirs (servicekit's
KEEP_ALIVE_SECONDS, 75 s)."""
RESENDABLE = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSED_RETRY_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.5)
"""Waits between attempts at a service that refuses connections (the last one repeats)."""


def _unavailable_for_now(reply: httpx.Response) -> bool:
    """A service's own 503 that says when to try again: nothing was done, and soon something will be."""
    return reply.status_code == 503 and "retry-after" in reply.headers


class Upstreams:
    def __init__(
        self,
        bases: dict[str, str],
        *,
        timeout: float,
        upload_timeout: float,
        health_timeout: float,
        openapi_timeout: float,
        restart_grace: float = 0.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`restart_grace`: how long a request waits for a service that refuses connections (one being
        restarted by its supervisor, or a pod being replaced) before it is a 503."""
        self.bases = bases
        self.restart_grace = restart_grace
        self.timeout = httpx.Timeout(timeout, connect=min(5.0, timeout))
        self.upload_timeout = httpx.Timeout(upload_timeout, connect=min(5.0, timeout))
        self.health_timeout, self.openapi_timeout = health_timeout, openapi_timeout
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=400, max_keepalive_connections=100, keepalive_expiry=POOL_IDLE_SECONDS),
        )

    @property
    def services(self) -> list[str]:
        return list(self.bases)

    async def send(
        self,
        service: str,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterable[bytes],
        *,
        upload: bool = False,
    ) -> httpx.Response:
        """Start the request and return once the response head arrived; the caller closes it."""
        request = self.client.build_request(
            method,
            self.bases[service] + target,
            headers=with_trace_context(headers),
            content=body,
            timeout=self.upload_timeout if upload else self.timeout,
        )
        try:
            try:
                return await self._send_while_refused(request, body)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # A pooled connection the service closed as it was reused: a request without a body that
                # changes nothing is sent once more, on a new connection.
                if method not in RESENDABLE or not isinstance(body, bytes):
                    raise
                return await self._send_while_refused(request, body)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(service, "did not answer in time") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(service, "is not reachable") from exc

    async def _send_while_refused(self, request: httpx.Request, body: bytes | AsyncIterable[bytes]) -> httpx.Response:
        """Send; while the service refuses the connection, try again until `restart_grace` has passed. A refused
        connection carried nothing, so any method may go again, as long as its body can be sent again (bytes:
        a streamed upload is read once). A read the service itself answers 503 with a Retry-After (its
        database restarting: a second or so) goes again too, within the same grace: it changed nothing. A
        service that stays down is a 503 after the grace, not a loop."""
        give_up = time.monotonic() + self.restart_grace
        waits = iter(REFUSED_RETRY_SECONDS)
        wait = 0.0
        while True:
            try:
                reply = await self.client.send(request, stream=True)
            except httpx.ConnectError:
                wait = next(waits, wait)
                if not isinstance(body, bytes) or time.monotonic() + wait > give_up:
                    raise
                await asyncio.sleep(wait)
                continue
            if not _unavailable_for_now(reply) or request.method not in RESENDABLE:
                return reply
            wait = next(waits, wait)
            if time.monotonic() + wait > give_up:
                return reply
            await reply.aclose()
            await asyncio.sleep(wait)

    async def health(self, service: str) -> ServiceHealth:
        return await self.probe(self.bases[service] + "/health")

    async def probe(self, url: str) -> ServiceHealth:
        """ok on 200, degraded on any other answer, unavailable when nothing answers in time."""
        try:
            reply = await self.client.get(url, timeout=self.health_timeout)
        except (TimeoutError, httpx.HTTPError):
            return "unavailable"
        return "ok" if reply.status_code == 200 else "degraded"

    async def openapi(self, service: str) -> dict[str, Any] | None:
        try:
            reply = await self.client.get(self.bases[service] + "/openapi.json", timeout=self.openapi_timeout)
            if reply.status_code != 200:
                return None
            document = reply.json()
        except (httpx.HTTPError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    async def aclose(self) -> None:
        await self.client.aclose()
