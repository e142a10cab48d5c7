"""The aggregated health document and the merged OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api_gateway.domain.api_document import merge_documents

from .conftest import SERVICES, Harness


def test_health_is_ok_when_every_service_is(harness: Harness) -> None:
    with harness.client(token=None) as client:
        reply = client.get("/api/v1/health")
    assert reply.status_code == 200
    assert reply.json() == {
        "status": "ok",
        "services": {"skus": "ok", "orders": "ok", "queue": "ok", "printer-gateway": "ok", "slicer": "ok"},
    }


def test_health_is_degraded_naming_the_failing_services(harness: Harness, upstream_apps: dict[str, FastAPI]) -> None:
    harness.transport.down.add("skus")
    upstream_apps["queue"].state.control["health"] = 503
    with harness.client(token=None) as client:
        reply = client.get("/api/v1/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "degraded"
    assert body["services"] == {
        "skus": "unavailable", "orders": "ok", "queue": "degraded", "printer-gateway": "ok", "slicer": "ok"
    }


def test_merged_openapi_prefixes_components_and_tolerates_a_missing_service(harness: Harness) -> None:
    harness.transport.down.add("queue")
    with harness.client(token=None) as client:
        doc = client.get("/api/openapi.json").json()
    assert "/api/v1/typed-skus" in doc["paths"]
    assert "/api/v1/typed-orders" in doc["paths"]
    assert "/api/v1/typed-queue" not in doc["paths"]
    assert "/api/v1/auth/login" in doc["paths"]
    assert "/api/v1/health" in doc["paths"]
    schemas = doc["components"]["schemas"]
    assert {"Skus_Thing", "Orders_Thing", "PrinterGateway_Thing"} <= set(schemas)
    ref = doc["paths"]["/api/v1/typed-orders"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ref == {"$ref": "#/components/schemas/Orders_Thing"}
    assert doc["x-unavailable-services"] == ["queue"]
    assert "/health" not in doc["paths"]


def test_docs_page_points_at_the_merged_document(harness: Harness) -> None:
    with harness.client(token=None) as client:
        reply = client.get("/api/docs")
    assert reply.status_code == 200
    assert "/api/openapi.json" in reply.text


def test_merge_rewrites_nested_refs_and_keeps_services_apart() -> None:
    def doc(title: str) -> dict[str, Any]:
        return {
            "openapi": "3.1.0",
            "paths": {
                "/api/v1/x": {"post": {"operationId": "make", "responses": {"200": {}}, "requestBody": {
                    "content": {"application/json": {"schema": {"items": {"$ref": "#/components/schemas/A"}}}}}}},
                "/health": {"get": {"responses": {}}},
            },
            "components": {"schemas": {"A": {"title": title, "properties": {"b": {"$ref": "#/components/schemas/B"}}},
                                       "B": {}}},
        }

    merged = merge_documents({"paths": {}}, {"skus": doc("skus"), "printer-gateway": doc("pg")}, title="t", version="1")
    schemas = merged["components"]["schemas"]
    assert schemas["Skus_A"]["properties"]["b"] == {"$ref": "#/components/schemas/Skus_B"}
    assert schemas["PrinterGateway_A"]["title"] == "pg"
    assert merged["paths"]["/api/v1/x"]["post"]["operationId"] == "PrinterGateway_make"
    assert "/health" not in merged["paths"]


def test_root_docs_redirect_to_the_merged_docs(harness: Harness) -> None:
    with harness.client(token=None) as client:
        reply = client.get("/docs", follow_redirects=False)
        assert client.get("/openapi.json").status_code == 404
    assert reply.status_code == 307
    assert reply.headers["location"] == "/api/docs"


def test_configured_probes_are_listed_beside_the_services(harness: Harness) -> None:
    probes = {"nats": SERVICES["orders"] + "/health", "simulator": SERVICES["skus"] + "/health"}
    with harness.client(token=None, health_probes=probes) as client:
        assert client.get("/api/v1/health").json()["services"]["simulator"] == "ok"
        harness.transport.down.add("skus")
        body = client.get("/api/v1/health").json()
    assert body["status"] == "degraded"
    assert body["services"]["simulator"] == "unavailable"
    assert body["services"]["nats"] == "ok"


def test_the_web_ui_runs_under_a_strict_content_security_policy(harness: Harness) -> None:
    with harness.client(token=None) as client:
        page = client.get("/")
        script = client.get("/app.js")
        docs = client.get("/api/docs")
    policy = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert script.headers["content-security-policy"] == policy
    assert docs.headers["content-security-policy"] != policy, "the API docs keep their own policy"
    assert "<script>" not in page.text and " style=" not in page.text
