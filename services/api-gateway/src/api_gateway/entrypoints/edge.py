"""What every response and request passes at the very edge, before routing: paths that could mean
something else upstream are refused (400), and security headers are added (HSTS once on TLS)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_gateway.domain.routing import path_refusal
from servicekit.problems import Problem, problem_response

UI_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
"""The web UI's: its own files only, no inline script or style (a route with other needs sets its own)."""

BASELINE_HEADERS = {
    "content-security-policy": UI_CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, hsts_seconds: int, behind_tls: bool) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_seconds}; includeSubDomains" if hsts_seconds > 0 else ""
        self.behind_tls = behind_tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        reason = path_refusal(raw_path)
        if reason is not None:
            response = problem_response(Problem(f"{reason}; send the path in its normal form", status=400))
            await response(scope, receive, self._with_headers(scope, send))
            return
        await self.app(scope, receive, self._with_headers(scope, send))

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        tls = self.behind_tls or scope.get("scheme") == "https"

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASELINE_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if tls and self.hsts:
                    headers["strict-transport-security"] = self.hsts
            await send(message)

        return sending
