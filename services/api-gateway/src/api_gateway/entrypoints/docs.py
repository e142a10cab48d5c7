"""`/api/openapi.json` (merged from every service, tolerating absent ones) and `/api/docs`.

Both are open without credentials: they describe the public contract, hold no data, and a
browser opening /api/docs has no token yet ("Authorize" in the page takes one for try-it-out).
"""

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from api_gateway.adapters.upstream import Upstreams
from api_gateway.domain.api_document import merge_documents


def router(upstreams: Upstreams, own_document: Callable[[], dict[str, Any]]) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/api/openapi.json")
    async def openapi() -> JSONResponse:
        names = upstreams.services
        documents = await asyncio.gather(*(upstreams.openapi(name) for name in names))
        merged = merge_documents(
            own_document(), dict(zip(names, documents, strict=True)), title="printfarm API", version="1"
        )
        return JSONResponse(merged)

    @api.get("/api/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="printfarm API")

    return api
