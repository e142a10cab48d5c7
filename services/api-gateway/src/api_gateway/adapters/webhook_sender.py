"""The HTTP side of a webhook delivery: one POST, no redirects followed, a bounded wait."""

from __future__ import annotations

import httpx


class HttpWebhookSender:
    def __init__(self, *, timeout_seconds: float = 10.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        # No proxies from the environment and no redirects: the address the admin entered is the one called.
        self.client = httpx.AsyncClient(
            timeout=timeout_seconds, follow_redirects=False, trust_env=False, transport=transport
        )

    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return None, "timed out"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        return response.status_code, None

    async def aclose(self) -> None:
        await self.client.aclose()
