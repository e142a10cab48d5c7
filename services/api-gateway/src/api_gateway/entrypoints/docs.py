"""`/api/openapi.json` (merged from every service, tolerating absent ones) and `/api/docs`.

Both are open without credentials: they describe the public contract, hold no data, and a
browser opening /api/docs has no token yet ("Authorize" in the page takes one for try-it-out).
Swagger UI's files come from the `swagger-ui-py` package and are served here, so the page works
offline and runs no script from another origin; its Content-Security-Policy allows only this origin.
"""

import asyncio
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from api_gateway.adapters.upstream import Upstreams
from api_gateway.domain.api_document import merge_documents
from servicekit.problems import NotFound

SWAGGER_UI = Path(str(files("swagger_ui").joinpath("static")))
OWN_ASSETS = Path(__file__).parents[1] / "docs_ui"
ASSETS: dict[str, Path] = {
    "swagger-ui.css": SWAGGER_UI / "swagger-ui.css",
    "swagger-ui-bundle.js": SWAGGER_UI / "swagger-ui-bundle.js",
    "favicon-32x32.png": SWAGGER_UI / "favicon-32x32.png",
    "oauth2-redirect.html": SWAGGER_UI / "oauth2-redirect.html",
    "swagger-init.js": OWN_ASSETS / "swagger-init.js",
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>printfarm API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/api/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/api/openapi.json"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/assets/swagger-init.js"></script>
</body>
</html>
"""


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
        return HTMLResponse(DOCS_PAGE, headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})

    @api.get("/api/docs/assets/{name}")
    async def asset(name: str) -> FileResponse:
        path = ASSETS.get(name)
        if path is None:
            raise NotFound(f"no docs asset {name}")
        return FileResponse(
            path, headers={"Cache-Control": "public, max-age=3600", "Content-Security-Policy": DOCS_CSP}
        )

    return api
