"""A .scad part is test-rendered by OpenSCAD with its defaults where `openscad` is installed: one that
renders is accepted, one that does not is refused with OpenSCAD's own message. Without openscad the
upload still works and says it was not rendered."""

from __future__ import annotations

import shutil
import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration

GOOD = b"""/* [Size] */
// Width of the box
width = 40; // [10:5:100]
// Lid style
lid = "flat"; // [flat, domed]
module box() { cube([width, 20, 10]); }
box();
"""
BROKEN = b"""width = 40; // [10:100]
module box() { cube([width, 20, 10]) }
box(
"""


async def upload(api: httpx.AsyncClient, content: bytes) -> httpx.Response:
    return await api.post(
        "/api/v1/parts",
        files={"file": ("box.scad", content, "application/octet-stream")},
        data={"name": f"Box {uuid.uuid4().hex[:6]}", "material_type": "PLA"},
    )


async def test_a_scad_part_is_rendered_where_openscad_is_installed(api: httpx.AsyncClient) -> None:
    reply = await upload(api, GOOD)
    assert reply.status_code == 201, reply.text
    part = reply.json()
    assert [(p["name"], p["type"], p["default"]) for p in part["parameters"]] == [
        ("width", "number", 40),
        ("lid", "string", "flat"),
    ]
    assert part["render"]["rendered"] is (shutil.which("openscad") is not None), part["render"]


async def test_a_scad_part_that_does_not_render_is_refused_with_openscads_reason(api: httpx.AsyncClient) -> None:
    reply = await upload(api, BROKEN)
    if shutil.which("openscad") is None:
        assert reply.status_code == 201 and reply.json()["render"]["rendered"] is False, reply.text
        return
    assert reply.status_code == 422, reply.text
    problem = reply.json()
    assert problem["errors"][0]["field"] == "file"
    assert "OpenSCAD" in problem["detail"] and "error" in problem["detail"].lower(), problem["detail"]
