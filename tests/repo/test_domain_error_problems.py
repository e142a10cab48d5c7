"""Every declared domain error answers through servicekit's one installer with the same bytes the services'
own mappings answered before it (status, content type, the gateway's challenge and Retry-After headers, and the
body, member for member)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api_gateway.adapters.upstream import UpstreamUnavailable
from api_gateway.domain.errors import (
    ArchiveUnavailable,
    BadCredentials,
    HashingBusy,
    InvalidField,
    KeyReused,
    LastAdmin,
    NotAllowed,
    StillInFlight,
    TooManyAttempts,
    UnknownDeadLetter,
    UnknownToken,
    UnknownUser,
    UsernameTaken,
    WebhookInvalid,
    WebhookNotFound,
)
from api_gateway.entrypoints.problems import BadPath, Forbidden, TooManyRequests, Unauthorized, install_gateway_problems
from orders.domain import errors as orders_errors
from printer_gateway.domain.errors import (
    AccessCodeRequired,
    CameraUnavailable,
    PrinterError,
    PrinterNotFound,
    SerialTaken,
    WrongSecretField,
)
from printqueue.domain import errors as queue_errors
from servicekit.domain_errors import DomainError
from servicekit.problems import Unavailable, install_problem_handlers
from skus.domain import errors as skus_errors
from skus.domain.files import FileRejected, FileTooLarge

ORDERS: list[DomainError] = [
    orders_errors.OrderNotFound("o1"),
    orders_errors.LineItemNotFound("o1", "li1"),
    orders_errors.OrderClosed("o1"),
    orders_errors.OrderIsCancelled("o1", "edit"),
    orders_errors.NotClosable("o1", "jobs are still printing"),
    orders_errors.StaleRevision("o1", "3", 4),
    orders_errors.InvalidField("line_items[0].quantity", "must be at least 1"),
    orders_errors.ParameterInvalid("size", "must be a number"),
    orders_errors.NotPrintable(
        "o1",
        [
            orders_errors.UnprintableLineItem("li1", 0, "SKU deleted"),
            orders_errors.UnprintableLineItem("li2", 2, "no parts"),
        ],
    ),
    orders_errors.SkuCatalogueUnavailable("timeout"),
    orders_errors.OrderError("something else"),
]
SKUS: list[DomainError] = [
    FileTooLarge("file", "too many triangles"),
    FileRejected("file", "not an STL"),
    skus_errors.Invalid("parts[1].sku_params", "unknown"),
    skus_errors.NotFound("part", "p1"),
    skus_errors.DuplicateSku("MUG", "s1", "MUG"),
    skus_errors.InUse("part p1 is used by SKUs", [{"id": "s1", "sku": "MUG"}]),
    skus_errors.StorageUnavailable("object store down"),
    skus_errors.UploadTooLarge(1000),
    skus_errors.SkusError("other"),
]
QUEUE: list[DomainError] = [
    queue_errors.JobNotFound("j1"),
    queue_errors.TransitionForbidden("job is already completed"),
]

# What orders' entrypoints/problems.py, skus' api.as_problem and the queue's api.problems() answered before.
ANSWERED_BEFORE: list[tuple[str, int, dict[str, Any]]] = [
    (
        "OrderNotFound",
        404,
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "order o1 not found",
        },
    ),
    (
        "LineItemNotFound",
        404,
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "line item li1 not found in order o1",
        },
    ),
    (
        "OrderClosed",
        409,
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "order o1 is closed: closed orders are read-only",
            "reason": "order o1 is closed: closed orders are read-only",
        },
    ),
    (
        "OrderIsCancelled",
        409,
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "order o1 is cancelled: cannot edit",
            "reason": "order o1 is cancelled: cannot edit",
        },
    ),
    (
        "NotClosable",
        409,
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "order o1 cannot be closed: jobs are still printing",
            "reason": "jobs are still printing",
        },
    ),
    (
        "StaleRevision",
        412,
        {
            "type": "https://printfarm.dev/problems/precondition-failed",
            "title": "Precondition failed",
            "status": 412,
            "detail": "order o1 is at revision 4, not 3: reload and retry",
            "revision": 4,
        },
    ),
    (
        "InvalidField",
        422,
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "line_items[0].quantity: must be at least 1",
            "errors": [{"field": "line_items[0].quantity", "message": "must be at least 1"}],
        },
    ),
    (
        "ParameterInvalid",
        422,
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "parameters.size: must be a number",
            "errors": [{"field": "parameters.size", "message": "must be a number"}],
        },
    ),
    (
        "NotPrintable",
        422,
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "order o1 cannot be sent to the queue: line item li1: SKU deleted; line item li2: no parts",
            "errors": [
                {"field": "line_items[0]", "message": "SKU deleted"},
                {"field": "line_items[2]", "message": "no parts"},
            ],
            "line_item_ids": ["li1", "li2"],
        },
    ),
    (
        "SkuCatalogueUnavailable",
        503,
        {
            "type": "https://printfarm.dev/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the SKU catalogue did not answer: timeout",
        },
    ),
    (
        "OrderError",
        422,
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "something else",
        },
    ),
    (
        "FileTooLarge",
        413,
        {
            "type": "https://printfarm.dev/problems/content-too-large",
            "title": "Content too large",
            "status": 413,
            "detail": "file: too many triangles",
            "errors": [{"field": "file", "message": "too many triangles"}],
        },
    ),
    (
        "FileRejected",
        422,
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "file: not an STL",
            "errors": [{"field": "file", "message": "not an STL"}],
        },
    ),
    (
        "Invalid",
        422,
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "parts[1].sku_params: unknown",
            "errors": [{"field": "parts[1].sku_params", "message": "unknown"}],
        },
    ),
    (
        "NotFound",
        404,
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "part p1 not found",
        },
    ),
    (
        "DuplicateSku",
        409,
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "sku: SKU code 'MUG' is already used by SKU 'MUG' (s1)",
            "errors": [{"field": "sku", "message": "SKU code 'MUG' is already used by SKU 'MUG' (s1)"}],
            "existing": {"id": "s1", "sku": "MUG"},
        },
    ),
    (
        "InUse",
        409,
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "part p1 is used by SKUs",
            "used_by": [{"id": "s1", "sku": "MUG"}],
        },
    ),
    (
        "StorageUnavailable",
        503,
        {
            "type": "https://printfarm.dev/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "object store down",
        },
    ),
    (
        "UploadTooLarge",
        413,
        {
            "type": "https://printfarm.dev/problems/content-too-large",
            "title": "Content too large",
            "status": 413,
            "detail": "file: larger than the upload limit of 1000 bytes",
            "errors": [{"field": "file", "message": "larger than the upload limit of 1000 bytes"}],
        },
    ),
    (
        "SkusError",
        400,
        {
            "type": "https://printfarm.dev/problems/bad-request",
            "title": "Bad request",
            "status": 400,
            "detail": "other",
        },
    ),
    (
        "JobNotFound",
        404,
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "job j1 does not exist",
        },
    ),
    (
        "TransitionForbidden",
        409,
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "job is already completed",
        },
    ),
]


GATEWAY: list[Exception] = [
    UpstreamUnavailable("orders", "is not reachable"),
    KeyReused("k1"),
    StillInFlight("k1"),
    BadCredentials("wrong username or password"),
    UnknownToken("t1"),
    UnknownUser("u1"),
    NotAllowed("only an admin manages users"),
    NotAllowed("a viewer cannot create a token with the admin role", "role"),
    InvalidField("expires_at", "must be in the future"),
    UsernameTaken("ada"),
    LastAdmin("ada"),
    TooManyAttempts(4.2),
    HashingBusy("every password-hashing slot is busy; try again shortly"),
    UnknownDeadLetter("m1"),
    ArchiveUnavailable("did not answer while listing (TimeoutError)"),
    WebhookInvalid("url", "an http:// or https:// address"),
    WebhookNotFound("w1"),
    Unauthorized("missing bearer token"),
    Forbidden("no"),
    TooManyRequests("slow down"),
    BadPath("bad path"),
    Unavailable("down"),
]

# What the gateway's as_problem/with_challenge answered before: status, headers, body.
GATEWAY_ANSWERED_BEFORE: list[tuple[str, int, dict[str, str], dict[str, Any]]] = [
    (
        "UpstreamUnavailable",
        503,
        {"content-type": "application/problem+json", "retry-after": "2"},
        {
            "type": "https://printfarm.dev/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the orders service is not reachable; try again shortly",
            "service": "orders",
        },
    ),
    (
        "KeyReused",
        422,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "Idempotency-Key: was already used with a different request (method, path or body)",
            "errors": [
                {
                    "field": "Idempotency-Key",
                    "message": "was already used with a different request (method, path or body)",
                }
            ],
        },
    ),
    (
        "StillInFlight",
        409,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "a request with this Idempotency-Key is still in progress; retry it later",
        },
    ),
    (
        "BadCredentials",
        401,
        {"content-type": "application/problem+json", "www-authenticate": 'Bearer realm="printfarm"'},
        {
            "type": "https://printfarm.dev/problems/unauthorized",
            "title": "Unauthorized",
            "status": 401,
            "detail": "wrong username or password",
        },
    ),
    (
        "UnknownToken",
        404,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "no API token t1",
        },
    ),
    (
        "UnknownUser",
        404,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "no user u1",
        },
    ),
    (
        "NotAllowed",
        403,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/forbidden",
            "title": "Forbidden",
            "status": 403,
            "detail": "only an admin manages users",
        },
    ),
    (
        "NotAllowed",
        403,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/forbidden",
            "title": "Forbidden",
            "status": 403,
            "detail": "role: a viewer cannot create a token with the admin role",
            "errors": [{"field": "role", "message": "a viewer cannot create a token with the admin role"}],
        },
    ),
    (
        "InvalidField",
        422,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "expires_at: must be in the future",
            "errors": [{"field": "expires_at", "message": "must be in the future"}],
        },
    ),
    (
        "UsernameTaken",
        409,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "username: ada is taken",
            "errors": [{"field": "username", "message": "ada is taken"}],
        },
    ),
    (
        "LastAdmin",
        409,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "ada is the last active admin; make another admin first",
        },
    ),
    (
        "TooManyAttempts",
        429,
        {"content-type": "application/problem+json", "retry-after": "5"},
        {
            "type": "https://printfarm.dev/problems/too-many-requests",
            "title": "Too many requests",
            "status": 429,
            "detail": "too many failed logins; try again in 5 s",
            "retry_after": 5,
        },
    ),
    (
        "HashingBusy",
        503,
        {"content-type": "application/problem+json", "retry-after": "2"},
        {
            "type": "https://printfarm.dev/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "every password-hashing slot is busy; try again shortly",
        },
    ),
    (
        "UnknownDeadLetter",
        404,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "no dead letter holds message m1 (never dead-lettered, or already replayed)",
        },
    ),
    (
        "ArchiveUnavailable",
        503,
        {"content-type": "application/problem+json", "retry-after": "2"},
        {
            "type": "https://printfarm.dev/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the message bus did not answer while listing (TimeoutError); try again shortly",
            "service": "nats",
        },
    ),
    (
        # Before: the webhook routes raised servicekit's Invalid.field(field, message).
        "WebhookInvalid",
        422,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "url: an http:// or https:// address",
            "errors": [{"field": "url", "message": "an http:// or https:// address"}],
        },
    ),
    (
        # Before: the webhook routes raised servicekit's NotFound(f"no webhook {id}").
        "WebhookNotFound",
        404,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "no webhook w1",
        },
    ),
    (
        "Unauthorized",
        401,
        {"content-type": "application/problem+json", "www-authenticate": 'Bearer realm="printfarm"'},
        {
            "type": "https://printfarm.dev/problems/unauthorized",
            "title": "Unauthorized",
            "status": 401,
            "detail": "missing bearer token",
        },
    ),
    (
        "Forbidden",
        403,
        {"content-type": "application/problem+json"},
        {"type": "https://printfarm.dev/problems/forbidden", "title": "Forbidden", "status": 403, "detail": "no"},
    ),
    (
        "TooManyRequests",
        429,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/too-many-requests",
            "title": "Too many requests",
            "status": 429,
            "detail": "slow down",
        },
    ),
    (
        "BadPath",
        400,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/bad-request",
            "title": "Bad request",
            "status": 400,
            "detail": "bad path",
        },
    ),
    (
        "Unavailable",
        503,
        {"content-type": "application/problem+json"},
        {
            "type": "https://printfarm.dev/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "down",
        },
    ),
]


@pytest.mark.parametrize(("error", "before"), list(zip(GATEWAY, GATEWAY_ANSWERED_BEFORE, strict=True)))
def test_a_gateway_error_answers_as_the_gateway_answered_before(
    error: Exception, before: tuple[str, int, dict[str, str], dict[str, Any]]
) -> None:
    name, status, headers, body = before
    app = FastAPI()
    install_problem_handlers(app)
    install_gateway_problems(app)

    @app.get("/fail")
    async def fail() -> None:
        raise error

    reply = TestClient(app, raise_server_exceptions=False).get("/fail")
    sent = {k: v for k, v in reply.headers.items() if k in ("www-authenticate", "retry-after", "content-type")}
    assert (type(error).__name__, reply.status_code, sent, reply.json()) == (name, status, headers, body)


def answer(error: DomainError) -> tuple[int, str, dict[str, Any]]:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fail")
    async def fail() -> None:
        raise error

    reply = TestClient(app, raise_server_exceptions=False).get("/fail")
    return reply.status_code, reply.headers["content-type"], reply.json()


@pytest.mark.parametrize(("error", "before"), list(zip(ORDERS + SKUS + QUEUE, ANSWERED_BEFORE, strict=True)))
def test_a_declared_error_answers_as_its_service_answered_before(
    error: DomainError, before: tuple[str, int, dict[str, Any]]
) -> None:
    name, status, body = before
    assert type(error).__name__ == name
    assert answer(error) == (status, "application/problem+json", body)


def test_headers_a_domain_error_declares_go_on_the_response() -> None:
    class Busy(DomainError):
        status, title = 503, "Service unavailable"

    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/busy")
    async def busy() -> None:
        raise Busy("try later", headers={"Retry-After": "2"})

    reply = TestClient(app).get("/busy")
    assert reply.status_code == 503 and reply.headers["retry-after"] == "2"
    assert reply.json()["type"] == "https://printfarm.dev/problems/service-unavailable"


PRINTER_GATEWAY: list[tuple[DomainError, int, dict[str, Any]]] = [
    # What the printer gateway's routes raised for these, by hand, before (NotFound, Conflict, Invalid, Problem).
    (
        PrinterNotFound("p1"),
        404,
        {
            "type": "https://printfarm.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "no printer p1",
        },
    ),
    (
        SerialTaken("00M09A", "p1"),
        409,
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "a printer with serial 00M09A is already registered (p1)",
            "errors": [{"field": "serial", "message": "already registered"}],
        },
    ),
    (
        AccessCodeRequired(["host", "serial"], "api_key"),
        422,
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "changing host, serial requires the printer's api_key in the same request",
            "errors": [{"field": "api_key", "message": "required when changing host, serial"}],
        },
    ),
    (
        WrongSecretField("moonraker", "api_key", "access_code"),
        422,
        {
            "type": "https://printfarm.dev/problems/unprocessable-content",
            "title": "Unprocessable content",
            "status": 422,
            "detail": "access_code: a moonraker printer takes api_key, not access_code",
            "errors": [{"field": "access_code", "message": "a moonraker printer takes api_key, not access_code"}],
        },
    ),
    (
        PrinterError("the printer is printing"),
        409,
        {
            "type": "https://printfarm.dev/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "the printer is printing",
        },
    ),
    (
        CameraUnavailable("the printer is offline"),
        409,
        {
            "type": "https://printfarm.dev/problems/camera-unavailable",
            "title": "Camera unavailable",
            "status": 409,
            "detail": "camera unavailable: the printer is offline",
        },
    ),
]


@pytest.mark.parametrize(("error", "status", "body"), PRINTER_GATEWAY)
def test_a_printer_gateway_error_answers_as_its_route_answered_before(
    error: DomainError, status: int, body: dict[str, Any]
) -> None:
    assert answer(error) == (status, "application/problem+json", body)


def test_a_camera_refusal_keeps_its_reason_as_its_message_for_the_replica_that_relays_it() -> None:
    assert str(CameraUnavailable("the printer is offline")) == "the printer is offline"
