"""The gateway's own problem types, and the one handler it adds to servicekit's installer (a client that hung up).

Its domain errors declare their status, title and headers (a 401's challenge, a 503's Retry-After) themselves.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from api_gateway.domain.errors import CHALLENGE
from servicekit.problems import Problem, problem_response

log = logging.getLogger(__name__)


class Unauthorized(Problem):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers=dict(CHALLENGE))


class Forbidden(Problem):
    status, title = 403, "Forbidden"


class TooManyRequests(Problem):
    status, title = 429, "Too many requests"


class BadPath(Problem):
    status, title = 400, "Bad request"


def install_gateway_problems(app: FastAPI) -> None:
    async def on_disconnect(request: Request, _: Exception) -> JSONResponse:
        log.info("client went away during %s %s", request.method, request.url.path)
        return problem_response(Problem("the client closed the connection", status=400, title="Bad request"))

    app.add_exception_handler(ClientDisconnect, on_disconnect)
