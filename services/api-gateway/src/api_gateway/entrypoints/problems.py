"""The gateway's own problem types and their mapping from domain errors (one place)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from api_gateway.adapters.upstream import UpstreamUnavailable
from api_gateway.domain.auth_errors import (
    BadCredentials,
    HashingBusy,
    InvalidField,
    LastAdmin,
    NotAllowed,
    TooManyAttempts,
    UnknownToken,
    UnknownUser,
    UsernameTaken,
)
from api_gateway.domain.dead_letters import ArchiveUnavailable, UnknownDeadLetter
from api_gateway.domain.idempotency import KeyReused, StillInFlight
from servicekit.problems import Conflict, Invalid, NotFound, Problem, Unavailable, problem_response

log = logging.getLogger(__name__)


class Unauthorized(Problem):
    status, title = 401, "Unauthorized"


class Forbidden(Problem):
    status, title = 403, "Forbidden"


class TooManyRequests(Problem):
    status, title = 429, "Too many requests"


class BadPath(Problem):
    status, title = 400, "Bad request"


def as_problem(exc: Exception) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, UpstreamUnavailable):
        return Unavailable(f"the {exc.service} service {exc.reason}; try again shortly", extra={"service": exc.service})
    if isinstance(exc, KeyReused):
        return Invalid.field("Idempotency-Key", "was already used with a different request (method, path or body)")
    if isinstance(exc, StillInFlight):
        return Conflict("a request with this Idempotency-Key is still in progress; retry it later")
    if isinstance(exc, BadCredentials):
        return Unauthorized(str(exc))
    if isinstance(exc, UnknownToken):
        return NotFound(f"no API token {exc}")
    if isinstance(exc, UnknownUser):
        return NotFound(f"no user {exc}")
    if isinstance(exc, NotAllowed):
        return Forbidden(str(exc)) if exc.field is None else Forbidden.field(exc.field, str(exc))
    if isinstance(exc, InvalidField):
        return Invalid.field(exc.field, exc.message)
    if isinstance(exc, UsernameTaken):
        return Conflict.field("username", f"{exc} is taken")
    if isinstance(exc, LastAdmin):
        return Conflict(f"{exc} is the last active admin; make another admin first")
    if isinstance(exc, TooManyAttempts):
        return TooManyRequests(str(exc), extra={"retry_after": int(exc.retry_after) + 1})
    if isinstance(exc, HashingBusy):
        return Unavailable(str(exc))
    if isinstance(exc, UnknownDeadLetter):
        return NotFound(f"no dead letter holds message {exc} (never dead-lettered, or already replayed)")
    if isinstance(exc, ArchiveUnavailable):
        return Unavailable(f"the message bus {exc}; try again shortly", extra={"service": "nats"})
    raise TypeError(f"not a mapped error: {exc!r}")


MAPPED: tuple[type[Exception], ...] = (
    UpstreamUnavailable,
    KeyReused,
    StillInFlight,
    BadCredentials,
    UnknownToken,
    UnknownUser,
    NotAllowed,
    InvalidField,
    UsernameTaken,
    LastAdmin,
    TooManyAttempts,
    HashingBusy,
    UnknownDeadLetter,
    ArchiveUnavailable,
)


def install_gateway_problems(app: FastAPI) -> None:
    async def on_mapped(_: Request, exc: Exception) -> JSONResponse:
        response = with_challenge(problem_response(as_problem(exc)))
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response

    async def on_unauthorized(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return with_challenge(problem_response(exc))

    async def on_disconnect(request: Request, _: Exception) -> JSONResponse:
        log.info("client went away during %s %s", request.method, request.url.path)
        return problem_response(Problem("the client closed the connection", status=400, title="Bad request"))

    for error in MAPPED:
        app.add_exception_handler(error, on_mapped)
    app.add_exception_handler(Unauthorized, on_unauthorized)
    app.add_exception_handler(ClientDisconnect, on_disconnect)


def with_challenge(response: JSONResponse) -> JSONResponse:
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="printfarm"'
    if response.status_code == 503:
        response.headers["Retry-After"] = "2"
    return response
