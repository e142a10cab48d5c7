"""The forwarding edge: every owned /api/v1 path goes to its service, bodies streamed both ways.

JSON bodies are read and sent in one piece; uploads are streamed. Whatever its Content-Type, a body
is held to its route's budget: MAX_UPLOAD_BYTES for a part upload, MAX_JSON_BYTES for anything else.
A POST with an Idempotency-Key is claimed before it is forwarded and
its answer recorded after; an upload with a key is spooled to a temporary file while it is hashed.
"""

import tempfile
from collections.abc import AsyncIterator
from typing import IO, Annotated

import httpx
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from api_gateway.adapters.body_digest import BodyDigest
from api_gateway.adapters.upstream import Upstreams
from api_gateway.domain.auth import Principal
from api_gateway.domain.forwarding import request_headers, response_headers
from api_gateway.domain.idempotency import Fingerprint, StoredResponse, keep_headers, valid_key
from api_gateway.domain.routing import body_budget, is_upload, owner_of
from api_gateway.entrypoints.auth import Authenticate
from api_gateway.service_layer.idempotency import IdempotencyKeys
from servicekit.problems import Invalid, NotFound, TooLarge

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 256 * 1024


def router(
    upstreams: Upstreams,
    keys: IdempotencyKeys,
    authenticate: Authenticate,
    *,
    max_json_bytes: int,
    max_upload_bytes: int,
) -> APIRouter:
    api = APIRouter()

    @api.api_route("/api/{rest:path}", methods=METHODS, include_in_schema=False)
    async def forward(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Response:
        path = request.url.path
        service = owner_of(path)
        if service is None:
            raise NotFound(f"no API path {path}")
        method = request.method
        raw_path = request.scope.get("raw_path") or path.encode()
        query = request.scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")
        headers = request_headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            request.client.host if request.client else None,
            request.url.scheme,
            request.headers.get("host", ""),
        )
        upload = is_upload(method, path, request.headers.get("content-type", ""))
        limit = max_upload_bytes if body_budget(method, path) == "part-upload" else max_json_bytes
        _refuse_declared_excess(request, limit)
        key = request.headers.get("idempotency-key")

        if method == "POST" and key is not None:
            if not valid_key(key):
                raise Invalid.field("Idempotency-Key", "must be 1–255 printable characters")
            return await _forward_once(request, principal, key, service, target, headers, upload, limit)

        body: bytes | AsyncIterator[bytes]
        if upload:
            body = _limited(request, limit)
        elif method in BODYLESS and not _declares_body(request):
            body = b""
        else:
            body = await _read(request, limit)
        reply = await upstreams.send(service, method, target, headers, body, upload=upload)
        streamed = StreamingResponse(_relay(reply), status_code=reply.status_code)
        streamed.raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers(reply.headers.multi_items())
        ]
        return streamed

    async def _forward_once(
        request: Request,
        principal: Principal,
        key: str,
        service: str,
        target: str,
        headers: list[tuple[str, str]],
        upload: bool,
        limit: int,
    ) -> Response:
        spool: IO[bytes] | None = None
        try:
            if upload:
                spool, sha256 = await _spool(request, limit)
            else:
                data = await _read(request, limit)
                digest = BodyDigest(request.headers.get("content-type", ""))
                digest.update(data)
                sha256 = digest.hexdigest()
            stored = await keys.begin(principal.id, key, Fingerprint("POST", target, sha256))
            if stored is not None:
                return _replay(stored)
            try:
                body: bytes | AsyncIterator[bytes] = _chunks(spool) if spool is not None else data
                reply = await upstreams.send(service, "POST", target, headers, body, upload=upload)
                try:
                    content = await reply.aread()
                finally:
                    await reply.aclose()
            except BaseException:
                await keys.finish(principal.id, key, None)
                raise
            await keys.finish(
                principal.id, key, StoredResponse(reply.status_code, keep_headers(dict(reply.headers)), content)
            )
            return Response(
                content,
                status_code=reply.status_code,
                headers=dict(response_headers(reply.headers.multi_items(), buffered=True)),
            )
        finally:
            if spool is not None:
                spool.close()

    return api


def _replay(stored: StoredResponse) -> Response:
    return Response(stored.body, status_code=stored.status, headers={**stored.headers, "idempotent-replayed": "true"})


def _declares_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return bool(length and length != "0") or "chunked" in request.headers.get("transfer-encoding", "").lower()


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"request body is larger than {limit} bytes, this route's limit", extra={"limit": limit})


def _refuse_declared_excess(request: Request, limit: int) -> None:
    """A body declared too large is refused before a byte of it is read or forwarded."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    _refuse_declared_excess(request, limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if chunk:
            yield chunk


async def _read(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in _limited(request, limit)])


async def _spool(request: Request, limit: int) -> tuple[IO[bytes], str]:
    """Hash a large body while writing it to a temporary file, so it is never held in memory."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    digest = BodyDigest(request.headers.get("content-type", ""))
    try:
        async for chunk in _limited(request, limit):
            digest.update(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, digest.hexdigest()


async def _chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := spool.read(CHUNK):
        yield chunk


async def _relay(reply: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in reply.aiter_raw():
            yield chunk
    finally:
        await reply.aclose()
