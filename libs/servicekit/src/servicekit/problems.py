"""RFC 9457 problem details: every `DomainError` (each service's declared errors, and `Problem`) is answered once,
here, at the HTTP edge, by the handlers `install_problem_handlers` adds."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.domain_errors import DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(DomainError):
    """An error the HTTP edge itself raises, its status and title chosen per instance if need be."""

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        status: int | None = None,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail, errors=errors, extra=extra, headers=headers)
        self.status = status or type(self).status
        self.title = title or type(self).title

    @classmethod
    def field(cls, field: str, message: str, **kw: Any) -> Problem:
        return cls(f"{field}: {message}", errors=[{"field": field, "message": message}], **kw)

    def body(self) -> dict[str, Any]:
        return problem_body(self)


def problem_body(error: DomainError) -> dict[str, Any]:
    """The RFC 9457 body: `type` derived from the title, then title, status, detail, `errors` and the extras."""
    body: dict[str, Any] = {
        "type": f"https://printfarm.dev/problems/{error.title.lower().replace(' ', '-')}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if error.errors:
        body["errors"] = error.errors
    body.update(error.extra)
    return body


class Invalid(Problem):
    status, title = 422, "Unprocessable content"


class NotFound(Problem):
    status, title = 404, "Not found"


class Conflict(Problem):
    status, title = 409, "Conflict"


class PreconditionFailed(Problem):
    status, title = 412, "Precondition failed"


class TooLarge(Problem):
    status, title = 413, "Content too large"


class Unavailable(Problem):
    status, title = 503, "Service unavailable"


def problem_response(problem: DomainError) -> JSONResponse:
    response = JSONResponse(problem_body(problem), status_code=problem.status, media_type=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'line_items', 0, 'quantity') → 'line_items[0].quantity'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "form"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def install_problem_handlers(app: FastAPI) -> None:
    """The one installer: declared domain errors, request validation, routing errors and crashes all answer as
    problem details (a crash without its internals, logged instead)."""

    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "field": "body" if e.get("type") == "json_invalid" else field_path(e.get("loc", ())),
                "message": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        status = 400 if any(e.get("type") == "json_invalid" for e in exc.errors()) else 422
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        title = "Bad request" if status == 400 else "Unprocessable content"
        return problem_response(Problem(detail, errors=errors, status=status, title=title))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        return problem_response(
            Problem(str(exc.detail), status=exc.status_code, title=titles.get(exc.status_code, "Error"))
        )

    async def on_database_busy(request: Request, exc: Exception) -> JSONResponse:
        # Every pooled connection in use (a burst larger than the pool) or the database out of reach: the
        # request did nothing, and may be sent again in a moment.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return problem_response(
            Unavailable("the service's database is busy or out of reach; retry shortly", headers={"Retry-After": "1"})
        )

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        # A statement that met a connection the server closed (a restart) changed nothing either; any other
        # database error is a crash.
        assert isinstance(exc, sqlalchemy.exc.DBAPIError)
        if exc.connection_invalidated:
            return await on_database_busy(request, exc)
        return await on_crash(request, exc)

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem("internal error; it has been logged", status=500, title="Internal error"))

    app.add_exception_handler(DomainError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, on_database_busy)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, on_database_busy)
    app.add_exception_handler(sqlalchemy.exc.InterfaceError, on_database_busy)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, on_database_error)
    app.add_exception_handler(Exception, on_crash)
