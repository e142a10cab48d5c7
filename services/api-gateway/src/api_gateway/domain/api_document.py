"""One OpenAPI document for the whole public API, merged from the services' own documents.

Component names are prefixed with the service's name (`Orders_Order`) so two services may both
have an `Order` or `HTTPValidationError` schema; every `$ref` in that service's part is rewritten.
"""

from __future__ import annotations

import copy
from typing import Any

Document = dict[str, Any]


def component_prefix(service: str) -> str:
    return "".join(word.capitalize() for word in service.replace("_", "-").split("-"))


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                section, _, name = value.removeprefix("#/components/").partition("/")
                out[key] = f"#/components/{section}/{prefix}_{name}"
            else:
                out[key] = _rewrite_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, prefix) for item in node]
    return node


def merge_documents(own: Document, services: dict[str, Document | None], *, title: str, version: str) -> Document:
    merged: Document = {
        "openapi": own.get("openapi", "3.1.0"),
        "info": {"title": title, "version": version},
        "paths": {},
        "components": {},
        "tags": [],
    }
    _add(merged, copy.deepcopy(own), tag="gateway")
    unavailable = []
    for service, document in services.items():
        if document is None:
            unavailable.append(service)
            continue
        prefix = component_prefix(service)
        _add(merged, _rewrite_refs(document, prefix), tag=service, prefix=prefix)
    merged["components"].setdefault("securitySchemes", {}).update(
        {
            "bearer": {"type": "http", "scheme": "bearer", "description": "An API token."},
            "session": {"type": "apiKey", "in": "cookie", "name": "pf_session"},
        }
    )
    merged["security"] = [{"bearer": []}, {"session": []}]
    merged["tags"] = [{"name": name} for name in ("gateway", *services) if name not in unavailable]
    if unavailable:
        merged["info"]["description"] = "Not included (service unavailable): " + ", ".join(unavailable)
        merged["x-unavailable-services"] = unavailable
    return merged


def _add(merged: Document, document: Document, *, tag: str, prefix: str = "") -> None:
    for path, item in (document.get("paths") or {}).items():
        if not path.startswith("/api/"):
            continue
        target = merged["paths"].setdefault(path, {})
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                operation.setdefault("tags", [tag])
                if prefix and "operationId" in operation:
                    operation["operationId"] = f"{prefix}_{operation['operationId']}"
            target[method] = operation
    for section, entries in (document.get("components") or {}).items():
        if not isinstance(entries, dict):
            continue
        bucket = merged["components"].setdefault(section, {})
        for name, value in entries.items():
            bucket[f"{prefix}_{name}" if prefix else name] = value
