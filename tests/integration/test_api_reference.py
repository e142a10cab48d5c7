"""docs/API.md against the OpenAPI document the running gateway serves: neither may drift from the other.

Every endpoint is documented under a heading of its own, "### `METHOD /api/v1/...`", with the path
template exactly as served. Its section names each query parameter (in backticks) and its success status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import Stack

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "API.md"
METHODS = ("get", "post", "put", "patch", "delete")
HEADING = re.compile(r"^#{2,4} `(?P<method>[A-Z]+) (?P<path>/api/\S+)`\s*$")
MENTION = re.compile(r"`(?P<method>GET|POST|PUT|PATCH|DELETE) (?P<path>/api/v1/[^`?\s]*)")

Endpoint = tuple[str, str]


@dataclass
class Section:
    heading_line: int
    text: list[str] = field(default_factory=list)

    @property
    def body(self) -> str:
        return "\n".join(self.text)


def documented_endpoints(markdown: str) -> dict[Endpoint, Section]:
    """Endpoint → its section: the lines up to the next heading. A repeated heading is an error."""
    sections: dict[Endpoint, Section] = {}
    current: Section | None = None
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.startswith("#"):
            current = None
            match = HEADING.match(line)
            if match:
                endpoint = (match["method"], match["path"])
                assert endpoint not in sections, f"docs/API.md:{number} documents {endpoint} a second time"
                current = sections[endpoint] = Section(number)
        elif current is not None:
            current.text.append(line)
    return sections


def mentioned_endpoints(markdown: str) -> set[Endpoint]:
    """`METHOD /api/v1/...` written anywhere, query strings left off: prose must not name what is not served."""
    found = set()
    for match in MENTION.finditer(markdown):
        path = match["path"]
        found.add((match["method"], path))
    return found


def served_operations(document: dict[str, Any]) -> dict[Endpoint, dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in METHODS and isinstance(operation, dict)
    }


def matches_template(concrete: str, template: str) -> bool:
    """`/api/v1/orders?customer=...` style mentions may fill a template's `{id}`s with anything."""
    pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
    return re.match(pattern, concrete) is not None


# --- the page on its own -----------------------------------------------------------------------------
def test_every_endpoint_heading_has_a_section_saying_what_it_answers() -> None:
    sections = documented_endpoints(REFERENCE.read_text(encoding="utf-8"))
    assert len(sections) >= 40, sorted(sections)
    for (method, path), section in sections.items():
        assert method in {m.upper() for m in METHODS}, (method, path)
        assert re.search(r"\b[1-5]\d\d\b", section.body), (
            f"{method} {path} (line {section.heading_line}) names no status"
        )


def test_the_parser_finds_headings_and_refuses_a_repeated_one() -> None:
    page = "# T\n### `GET /api/v1/things`\n`q` → `200`\n## Other\n### `POST /api/v1/things`\n→ `201`\n"
    sections = documented_endpoints(page)
    assert set(sections) == {("GET", "/api/v1/things"), ("POST", "/api/v1/things")}
    assert sections[("GET", "/api/v1/things")].body == "`q` → `200`"
    with pytest.raises(AssertionError, match="second time"):
        documented_endpoints(page + "### `GET /api/v1/things`\n")


def test_a_mention_fills_path_templates() -> None:
    assert matches_template("/api/v1/orders/abc/close", "/api/v1/orders/{order_id}/close")
    assert not matches_template("/api/v1/orders/abc/close", "/api/v1/orders/{order_id}")


# --- the page against what is served -----------------------------------------------------------------
@pytest.mark.integration
async def test_docs_api_md_and_the_served_openapi_document_list_the_same_endpoints(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, trust_env=False) as client:
        reply = await client.get("/api/openapi.json")
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert not document.get("x-unavailable-services"), "a service did not answer: the document is partial"
    served = served_operations(document)
    markdown = REFERENCE.read_text(encoding="utf-8")
    documented = documented_endpoints(markdown)

    undocumented = sorted(set(served) - set(documented))
    not_served = sorted(set(documented) - set(served))
    assert not undocumented, f"served but not in docs/API.md (add a '### `METHOD /path`' section): {undocumented}"
    assert not not_served, f"in docs/API.md but not served: {not_served}"

    for endpoint, operation in served.items():
        section = documented[endpoint].body
        queries = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
        missing = [name for name in queries if f"`{name}`" not in section]
        assert not missing, f"{endpoint}: query parameters {missing} are served but not documented"
        successes = [code for code in operation.get("responses", {}) if code.startswith("2")]
        assert any(re.search(rf"\b{code}\b", section) for code in successes), (
            f"{endpoint}: docs/API.md does not say it answers {successes}"
        )

    for method, path in mentioned_endpoints(markdown):
        assert any(m == method and matches_template(path, template) for m, template in served), (
            f"docs/API.md mentions `{method} {path}`, which is not served"
        )
