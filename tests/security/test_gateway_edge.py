"""HSTS and the API docs at the API gateway (issue 13): HSTS once clients come over TLS; Swagger UI
from the gateway's own origin under a Content-Security-Policy, so /api/docs works offline."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from devstack import Stack

from .gateway_harness import own_gateway

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


async def test_hsts_behind_a_tls_ingress(stack: Stack, tmp_path: Path) -> None:
    async with own_gateway(stack, tmp_path, behind_tls=True) as gw, gw.client(token=None) as client:
        for path in ("/", "/api/v1/health", "/api/v1/orders"):
            reply = await client.get(path)
            hsts = reply.headers.get("strict-transport-security", "")
            assert re.fullmatch(r"max-age=\d{7,}; includeSubDomains", hsts), (path, hsts)


async def test_no_hsts_over_plain_http_on_loopback(api: httpx.AsyncClient) -> None:
    assert "strict-transport-security" not in (await api.get("/api/v1/health")).headers


def test_the_ingress_redirects_to_https_and_sets_hsts() -> None:
    ingress = yaml.safe_load((ROOT / "deploy/k8s/base/api-gateway/ingress.yaml").read_text())
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    config = yaml.safe_load((ROOT / "deploy/k8s/base/api-gateway/configmap.yaml").read_text())["data"]
    assert config["BEHIND_TLS"] == "true"


async def test_docs_load_nothing_from_another_origin(api: httpx.AsyncClient) -> None:
    page = await api.get("/api/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    for source in sources:
        asset = await api.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 100, source
    bundle = await api.get(next(s for s in sources if s.endswith("swagger-ui-bundle.js")))
    assert "SwaggerUIBundle" in bundle.text
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert "'none'" in directives["default-src"] and "'none'" in directives["frame-ancestors"]


async def test_docs_render_offline_in_a_browser(stack: Stack) -> None:
    """Chromium with every other origin blocked: the page still renders the merged document."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Chromium not installed (make test installs it as root on Debian)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            outside: list[str] = []
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)

            async def only_local(route: object) -> None:
                request = route.request  # type: ignore[attr-defined]
                if request.url.startswith(stack.api_url):
                    await route.continue_()  # type: ignore[attr-defined]
                else:
                    outside.append(request.url)
                    await route.abort()  # type: ignore[attr-defined]

            await page.route("**/*", only_local)
            await page.goto(f"{stack.api_url}/api/docs")
            await page.wait_for_selector(".opblock-tag", timeout=30_000)
            assert await page.locator(".opblock").count() > 20
        finally:
            await browser.close()
    assert outside == []
    assert violations == []
