"""POST/GET/PATCH/DELETE /api/v1/parts over the real HTTP edge and service layer, in memory."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skus_fakes import UPLOAD_LIMIT, Service, envelope_data
from skus_samples import ASCII_STL, GCODE, SCAD, binary_stl, gcode_3mf, model_3mf

from skus.adapters.file_store import LocalFileStore
from skus.adapters.openscad import RenderResult

PART_CHANGED = "skus.v1.part.changed"
SKU_CHANGED = "skus.v1.sku.changed"


def upload(service: Service, filename: str, content: bytes, **form: Any) -> Any:
    data = {"name": "Widget", "material_type": "PLA", **{k: str(v) for k, v in form.items()}}
    return service.client.post("/api/v1/parts", data=data, files={"file": (filename, content)})


def scratch_is_empty(service: Service) -> bool:
    return not any(service.store.scratch_dir().iterdir())


def test_sliced_3mf_upload_reads_weight_time_and_filaments_and_stores_the_file_once(service: Service) -> None:
    content = gcode_3mf()
    r = upload(service, "cube.gcode.3mf", content, name="Cube", material_type="pla")
    assert r.status_code == 201, r.text
    part = r.json()
    sha = hashlib.sha256(content).hexdigest()
    assert part["kind"] == "gcode.3mf"
    assert part["sha256"] == sha and part["size_bytes"] == len(content)
    assert part["material"] == {"type": "PLA", "color": None}, "only the operator's colour is a requirement"
    assert [(f["type"], f["color"]) for f in part["filaments"]] == [("PLA", "#FF0000")]
    assert part["grams"] == 12.5 and part["print_minutes"] == 65.0
    assert part["parameters"] == [] and part["plates"][0]["gcode"] == "Metadata/plate_1.gcode"
    for key in ("id", "name", "filename", "created_at"):
        assert key in part
    assert service.bucket.objects[sha] == content
    assert service.store.path(sha).read_bytes() == content
    [changed] = envelope_data(service.published, PART_CHANGED)
    assert changed["id"] == part["id"] and changed["revision"] == 1 and changed["deleted"] is False
    assert changed["file"] == {
        "sha256": sha, "filename": "cube.gcode.3mf", "kind": "gcode.3mf",
        "size_bytes": len(content), "plate": "Metadata/plate_1.gcode", "bucket": None,
    }
    again = upload(service, "copy.gcode.3mf", content)
    assert again.status_code == 201 and again.json()["sha256"] == sha
    assert len([p for p in service.store.root.rglob(sha)]) == 1
    assert scratch_is_empty(service)


def test_form_weight_and_time_override_the_file(service: Service) -> None:
    r = upload(service, "cube.gcode.3mf", gcode_3mf(), grams=3.5, print_minutes=7, material_color="#00ff00")
    assert r.status_code == 201
    assert (r.json()["grams"], r.json()["print_minutes"]) == (3.5, 7.0)
    assert r.json()["material"] == {"type": "PLA", "color": "#00FF00"}


def test_every_kind_is_accepted(service: Service) -> None:
    cases = {
        "a.stl": binary_stl(3),
        "b.stl": ASCII_STL.encode(),
        "c.3mf": model_3mf(),
        "d.gcode": GCODE.encode(),
        "e.scad": SCAD.encode(),
    }
    kinds = {}
    for name, content in cases.items():
        r = upload(service, name, content)
        assert r.status_code == 201, (name, r.text)
        kinds[name] = r.json()
    assert kinds["a.stl"]["kind"] == "stl" and kinds["a.stl"]["triangle_count"] == 3
    assert kinds["b.stl"]["triangle_count"] == 1 and kinds["b.stl"]["bounding_box"]["max"] == [1.0, 1.0, 0.0]
    assert kinds["c.3mf"]["kind"] == "3mf"
    assert kinds["d.gcode"]["grams"] == 12.5
    scad = kinds["e.scad"]
    assert [p["name"] for p in scad["parameters"]] == ["width", "label", "finish", "hollow"]
    assert scad["render"] == {"rendered": False, "ok": True, "message": "OpenSCAD is not installed"}


def test_scad_that_openscad_cannot_render_is_refused_with_its_message(service: Service) -> None:
    service.render.result = RenderResult(rendered=True, ok=False, message="ERROR: Parser error in line 3")
    r = upload(service, "bad.scad", SCAD.encode())
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "file"
    assert "Parser error in line 3" in r.json()["detail"]
    assert service.state.parts == {} and service.bucket.objects == {}
    assert scratch_is_empty(service)


def test_scad_that_renders_says_so(service: Service) -> None:
    service.render.result = RenderResult(rendered=True, ok=True, message="rendered")
    r = upload(service, "ok.scad", SCAD.encode())
    assert r.status_code == 201
    assert r.json()["render"] == {"rendered": True, "ok": True, "message": "rendered"}
    assert len(service.render.calls) == 1


def test_broken_files_are_422_with_the_reason_and_leave_nothing_behind(service: Service) -> None:
    for name, content in {
        "broken.stl": b"\0" * 84 + b"\x01\x02",
        "broken.3mf": b"PK not a zip",
        "nogcode.gcode.3mf": model_3mf(),
        "text.gcode": b"hello world\n",
    }.items():
        r = upload(service, name, content)
        assert r.status_code == 422, (name, r.text)
        body = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert body["errors"][0]["field"] == "file" and body["detail"]
    assert service.state.parts == {} and service.published == []
    assert scratch_is_empty(service)


def test_unsupported_or_missing_file_is_422(service: Service) -> None:
    r = upload(service, "model.obj", b"v 0 0 0\n")
    assert r.status_code == 422 and "unsupported" in r.json()["detail"]
    r = service.client.post("/api/v1/parts", data={"name": "x", "material_type": "PLA"}, files={"other": ("a", b"")})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    r = service.client.post("/api/v1/parts", json={"name": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"


def test_form_fields_are_validated_naming_the_field(service: Service) -> None:
    content = gcode_3mf()
    cases = [
        ({"name": ""}, "name"),
        ({"material_type": " "}, "material_type"),
        ({"material_color": "red"}, "material_color"),
        ({"grams": "lots"}, "grams"),
        ({"grams": "-1"}, "grams"),
        ({"print_minutes": "nan"}, "print_minutes"),
    ]
    for form, field in cases:
        r = upload(service, "a.gcode.3mf", content, **form)
        assert r.status_code == 422, form
        assert r.json()["errors"][0]["field"] == field
    assert scratch_is_empty(service)


def test_too_large_upload_is_413_by_declared_length(service: Service) -> None:
    r = upload(service, "big.stl", binary_stl((UPLOAD_LIMIT + (1 << 20)) // 50 + 10))
    assert r.status_code == 413
    assert r.json()["errors"][0]["field"] == "file"
    assert str(UPLOAD_LIMIT) in r.json()["detail"]


def test_too_large_upload_is_413_while_streaming(service: Service) -> None:
    """Without Content-Length the limit is enforced on the bytes as they arrive."""
    boundary = "xyzzy"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nBig\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"material_type\"\r\n\r\nPLA\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.stl\"\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(UPLOAD_LIMIT // 65536 + 2):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = service.client.post(
        "/api/v1/parts", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert r.status_code == 413
    assert scratch_is_empty(service)


def test_get_list_search_and_download(service: Service) -> None:
    content = gcode_3mf()
    ids = [upload(service, "a.gcode.3mf", content, name=n).json()["id"] for n in ("Red Bracket", "Lid", "bracket XL")]
    r = service.client.get("/api/v1/parts", params={"q": "BRACKET"})
    assert [p["name"] for p in r.json()["items"]] == ["Red Bracket", "bracket XL"]
    page = service.client.get("/api/v1/parts", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = service.client.get("/api/v1/parts", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [p["id"] for p in page["items"] + rest["items"]] == ids and rest["next_cursor"] is None
    assert service.client.get(f"/api/v1/parts/{ids[1]}").json()["name"] == "Lid"
    file = service.client.get(f"/api/v1/parts/{ids[1]}/file")
    assert file.status_code == 200 and file.content == content
    assert "a.gcode.3mf" in file.headers["content-disposition"]
    assert service.client.get("/api/v1/parts/nope").status_code == 404
    assert service.client.get("/api/v1/parts/nope/file").status_code == 404
    assert service.client.get("/api/v1/parts", params={"cursor": "!!"}).status_code in (400, 422)


def test_patch_part_publishes_it_and_every_sku_that_uses_it(service: Service) -> None:
    part = upload(service, "a.gcode.3mf", gcode_3mf()).json()
    sku = service.client.post(
        "/api/v1/skus", json={"sku": "S1", "name": "Set", "parts": [{"part_id": part["id"], "quantity": 2}]}
    ).json()
    service.published.clear()
    r = service.client.patch(
        f"/api/v1/parts/{part['id']}", json={"name": "Cube v2", "grams": 20, "material": {"type": "petg"}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Cube v2" and r.json()["grams"] == 20 and r.json()["revision"] == 2
    assert r.json()["material"] == {"type": "PETG", "color": None}
    [pc] = envelope_data(service.published, PART_CHANGED)
    assert pc["revision"] == 2 and pc["name"] == "Cube v2"
    [sc] = envelope_data(service.published, SKU_CHANGED)
    assert sc["id"] == sku["id"] and sc["revision"] == 2
    assert sc["parts"][0]["part_name"] == "Cube v2"
    assert sc["materials"] == [{"type": "PETG", "color": None, "grams": 40}]
    r = service.client.patch(f"/api/v1/parts/{part['id']}", json={"material_color": "#123456"})
    assert r.json()["material"] == {"type": "PETG", "color": "#123456"}
    r = service.client.patch(f"/api/v1/parts/{part['id']}", json={"material_type": "asa"})
    assert r.json()["material"] == {"type": "ASA", "color": "#123456"} and r.json()["revision"] == 4
    assert service.client.patch("/api/v1/parts/nope", json={"material_color": "#123456"}).status_code == 404


def test_patch_part_rejects_bad_input(service: Service) -> None:
    part = upload(service, "a.gcode.3mf", gcode_3mf()).json()
    assert service.client.patch("/api/v1/parts/nope", json={"name": "x"}).status_code == 404
    for body, field in (
        ({"grams": -1}, "grams"),
        ({"name": None}, "name"),
        ({"material": None}, "material"),
        ({"material": {"type": "PLA", "color": "blue"}}, "material.color"),
        ({"file": "x"}, "file"),
    ):
        r = service.client.patch(f"/api/v1/parts/{part['id']}", json=body)
        assert r.status_code == 422, body
        assert r.json()["errors"][0]["field"] == field


def test_delete_part_used_by_a_sku_is_409_naming_it(service: Service) -> None:
    part = upload(service, "a.gcode.3mf", gcode_3mf()).json()
    sku = service.client.post(
        "/api/v1/skus", json={"sku": "KEEP-1", "name": "Set", "parts": [{"part_id": part["id"], "quantity": 1}]}
    ).json()
    r = service.client.delete(f"/api/v1/parts/{part['id']}")
    assert r.status_code == 409
    assert "KEEP-1" in r.json()["detail"] and r.json()["used_by"][0]["id"] == sku["id"]
    assert service.client.delete(f"/api/v1/skus/{sku['id']}").status_code == 204
    service.published.clear()
    assert service.client.delete(f"/api/v1/parts/{part['id']}").status_code == 204
    [gone] = envelope_data(service.published, PART_CHANGED)
    assert gone["deleted"] is True and gone["revision"] == 2
    assert service.client.get(f"/api/v1/parts/{part['id']}").status_code == 404
    assert service.client.delete(f"/api/v1/parts/{part['id']}").status_code == 404
    assert service.store.path(part["sha256"]).exists(), "files stay: queued jobs may still print them"


def test_object_store_down_is_503_and_nothing_is_recorded(service: Service) -> None:
    async def refuse(sha256: str, source: Path) -> None:
        raise ConnectionError("nats: no servers available")

    service.bucket.put = refuse  # type: ignore[method-assign]
    r = upload(service, "cube.gcode.3mf", gcode_3mf())
    assert r.status_code == 503 and "try again" in r.json()["detail"]
    assert service.state.parts == {} and service.published == []
    assert scratch_is_empty(service)


def test_uploads_left_by_a_crash_are_removed_on_start(tmp_path: Path) -> None:
    scratch = LocalFileStore(tmp_path).scratch_dir()
    old, fresh = scratch / "upload-old", scratch / "upload-fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (time.time() - 3 * 24 * 3600,) * 2)
    LocalFileStore(tmp_path)
    assert not old.exists() and fresh.exists()
