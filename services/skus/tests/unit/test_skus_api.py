"""POST/GET/PATCH/DELETE /api/v1/skus: the SKU rules, their 4xx answers and the SkuChanged they publish."""

from __future__ import annotations

from typing import Any

from skus_fakes import Service, envelope_data
from skus_samples import SCAD, gcode_3mf

from contracts.orders.v1 import OrderChanged
from skus.entrypoints.schemas import SkuOut
from skus.service_layer import handlers, messages

SKU_CHANGED = "skus.v1.sku.changed"

STRING_WIDTH_SCAD = SCAD.replace("width = 20; // [10:5:50]", 'width = "wide"; // [wide, narrow]')


def make_part(service: Service, filename: str, content: bytes, name: str, **form: Any) -> dict[str, Any]:
    data = {"name": name, "material_type": "PLA", **{k: str(v) for k, v in form.items()}}
    r = service.client.post("/api/v1/parts", data=data, files={"file": (filename, content)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def cube(service: Service, **form: Any) -> dict[str, Any]:
    return make_part(service, "cube.gcode.3mf", gcode_3mf(), "Cube", **form)


def box(service: Service, name: str = "Box", content: str = SCAD) -> dict[str, Any]:
    return make_part(
        service, "box.scad", content.encode(), name, material_type="PETG", material_color="#00FF00", grams=5
    )


def create(service: Service, body: dict[str, Any]) -> Any:
    return service.client.post("/api/v1/skus", json=body)


def problem_field(r: Any) -> str:
    return str(r.json()["errors"][0]["field"])


def test_create_sku_derives_parameters_jobs_and_materials(service: Service) -> None:
    c, b = cube(service), box(service)
    r = create(
        service,
        {
            "sku": "BOX-1",
            "name": "Box set",
            "description": "two cubes and a box",
            "parts": [
                {"part_id": c["id"], "quantity": 2},
                {"part_id": b["id"], "quantity": 1, "parameter_values": {"finish": "gloss", "width": 30},
                 "sku_params": ["width", "label"]},
                {"part_id": c["id"], "quantity": 1, "material": {"type": "pla", "color": "#0000ff"}},
            ],
        },
    )
    assert r.status_code == 201, r.text
    sku = r.json()
    assert sku["sku"] == "BOX-1" and sku["description"] == "two cubes and a box" and sku["revision"] == 1
    assert sku["jobs_per_unit"] == 4
    assert [p["part_name"] for p in sku["parts"]] == ["Cube", "Box", "Cube"]
    assert sku["parts"][2]["material"] == {"type": "PLA", "color": "#0000FF"}
    assert sku["parts"][1]["parameter_values"] == {"finish": "gloss", "width": 30}
    assert [(p["name"], p["type"], p["default"]) for p in sku["parameters"]] == [
        ("width", "number", 30), ("label", "string", "hi")
    ]
    assert sku["parameters"][0]["min"] == 10 and sku["parameters"][0]["max"] == 50
    assert sku["materials"] == [
        {"type": "PLA", "color": None, "grams": 25.0},
        {"type": "PETG", "color": "#00FF00", "grams": 5.0},
        {"type": "PLA", "color": "#0000FF", "grams": 12.5},
    ]
    for key in ("id", "created_at", "updated_at"):
        assert key in sku
    [changed] = envelope_data(service.published, SKU_CHANGED)
    assert changed["id"] == sku["id"] and changed["revision"] == 1 and changed["deleted"] is False
    assert changed["jobs_per_unit"] == 4
    assert changed["parts"][0]["file"]["sha256"] == c["sha256"] and changed["parts"][0]["grams"] == 12.5
    assert changed["parts"][1]["sku_params"] == ["width", "label"]
    assert service.client.get(f"/api/v1/skus/{sku['id']}").json() == sku


def test_a_sku_may_have_no_parts(service: Service) -> None:
    r = create(service, {"sku": "EMPTY", "name": "Nothing yet"})
    assert r.status_code == 201
    assert r.json()["jobs_per_unit"] == 0 and r.json()["parts"] == [] and r.json()["materials"] == []


def test_sku_code_is_unique_case_insensitively_and_409_names_the_existing_one(service: Service) -> None:
    first = create(service, {"sku": "Mug-01", "name": "Mug"}).json()
    r = create(service, {"sku": "mug-01", "name": "Other"})
    assert r.status_code == 409
    assert "Mug-01" in r.json()["detail"] and r.json()["existing"] == {"id": first["id"], "sku": "Mug-01"}
    assert len(service.state.skus) == 1


def test_line_rules_are_422_naming_the_field(service: Service) -> None:
    c, b = cube(service), box(service)
    cases: list[tuple[list[dict[str, Any]], str, str]] = [
        ([{"part_id": "missing", "quantity": 1}], "parts[0].part_id", "missing"),
        ([{"part_id": c["id"], "quantity": 1}, {"part_id": c["id"], "quantity": 0}], "parts[1].quantity", ""),
        ([{"part_id": c["id"], "quantity": -3}], "parts[0].quantity", ""),
        ([{"part_id": b["id"], "quantity": 1, "sku_params": ["depth"]}], "parts[0].sku_params", "depth"),
        ([{"part_id": c["id"], "quantity": 1, "sku_params": ["width"]}], "parts[0].sku_params", "width"),
        ([{"part_id": b["id"], "quantity": 1, "parameter_values": {"depth": 3}}], "parts[0].parameter_values.depth",
         "depth"),
        ([{"part_id": b["id"], "quantity": 1, "parameter_values": {"width": "big"}}],
         "parts[0].parameter_values.width", "number"),
        ([{"part_id": b["id"], "quantity": 1, "parameter_values": {"width": 51}}],
         "parts[0].parameter_values.width", "50"),
        ([{"part_id": b["id"], "quantity": 1, "parameter_values": {"width": 5}}],
         "parts[0].parameter_values.width", "10"),
        ([{"part_id": b["id"], "quantity": 1, "parameter_values": {"finish": "shiny"}}],
         "parts[0].parameter_values.finish", "matte"),
        ([{"part_id": b["id"], "quantity": 1, "parameter_values": {"hollow": 1}}],
         "parts[0].parameter_values.hollow", "true or false"),
        ([{"part_id": b["id"], "quantity": 1, "parameter_values": {"label": 7}}],
         "parts[0].parameter_values.label", "string"),
        ([{"part_id": c["id"], "quantity": 1, "material": {"type": "PLA", "color": "red"}}],
         "parts[0].material.color", "#RRGGBB"),
        ([{"part_id": c["id"], "quantity": 1, "material": {"type": " "}}], "parts[0].material.type", ""),
        ([{"part_id": c["id"]}], "parts[0].quantity", ""),
    ]
    for lines, field, words in cases:
        r = create(service, {"sku": "X", "name": "X", "parts": lines})
        assert r.status_code == 422, (lines, r.text)
        assert problem_field(r) == field, r.json()
        assert words in r.json()["detail"]
    assert service.state.skus == {} and service.published[-1].type != SKU_CHANGED


def test_same_parameter_with_different_types_across_parts_names_both_parts(service: Service) -> None:
    a, b = box(service, "Box A"), box(service, "Box B", STRING_WIDTH_SCAD)
    r = create(
        service,
        {"sku": "X", "name": "X", "parts": [
            {"part_id": a["id"], "quantity": 1, "sku_params": ["width"]},
            {"part_id": b["id"], "quantity": 1, "sku_params": ["width"]},
        ]},
    )
    assert r.status_code == 422
    assert problem_field(r) == "parts[1].sku_params"
    assert "'Box A'" in r.json()["detail"] and "'Box B'" in r.json()["detail"]


def test_a_shared_parameter_name_is_one_sku_parameter(service: Service) -> None:
    a, b = box(service, "Box A"), box(service, "Box B")
    r = create(
        service,
        {"sku": "PAIR", "name": "Pair", "parts": [
            {"part_id": a["id"], "quantity": 1, "sku_params": ["width", "finish"]},
            {"part_id": b["id"], "quantity": 3, "sku_params": ["width"]},
        ]},
    )
    assert r.status_code == 201
    assert [p["name"] for p in r.json()["parameters"]] == ["width", "finish"]
    assert r.json()["parameters"][1]["options"] == ["matte", "gloss"]
    assert r.json()["jobs_per_unit"] == 4


def test_request_body_problems_are_4xx(service: Service) -> None:
    assert create(service, {"name": "no code"}).status_code == 422
    assert problem_field(create(service, {"sku": "", "name": "x"})) == "sku"
    assert problem_field(create(service, {"sku": "  ", "name": "x"})) == "sku"
    assert problem_field(create(service, {"sku": "A", "name": "x", "colour": 1})) == "colour"
    bad_json = service.client.post("/api/v1/skus", content=b"{", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400


def test_list_and_search_by_code_or_name_case_insensitively_with_pages(service: Service) -> None:
    for code, name in (("MUG-RED", "Red mug"), ("mug-blue", "Blue mug"), ("VASE-1", "Tall vase"), ("50%_OFF", "Sale")):
        assert create(service, {"sku": code, "name": name}).status_code == 201

    def codes(**params: Any) -> list[str]:
        return [s["sku"] for s in service.client.get("/api/v1/skus", params=params).json()["items"]]

    assert codes(q="mug") == ["mug-blue", "MUG-RED"]
    assert codes(q="TALL") == ["VASE-1"]
    assert codes(q="%_") == ["50%_OFF"]
    assert codes(q="nothing") == []
    first = service.client.get("/api/v1/skus", params={"limit": 3}).json()
    rest = service.client.get("/api/v1/skus", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [s["sku"] for s in first["items"] + rest["items"]] == ["50%_OFF", "mug-blue", "MUG-RED", "VASE-1"]
    assert rest["next_cursor"] is None
    assert service.client.get("/api/v1/skus", params={"limit": 0}).status_code == 422
    assert service.client.get("/api/v1/skus", params={"limit": 501}).status_code == 422


def test_patch_sku_revises_it_and_publishes_the_new_state(service: Service) -> None:
    c, b = cube(service), box(service)
    sku = create(service, {"sku": "S", "name": "S", "parts": [{"part_id": c["id"], "quantity": 1}]}).json()
    service.published.clear()
    r = service.client.patch(
        f"/api/v1/skus/{sku['id']}",
        json={"name": "Renamed", "description": None,
              "parts": [{"part_id": b["id"], "quantity": 2, "sku_params": ["label"]}]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Renamed" and body["revision"] == 2 and body["jobs_per_unit"] == 2
    assert body["parameters"][0]["name"] == "label" and body["updated_at"] > sku["updated_at"]
    [changed] = envelope_data(service.published, SKU_CHANGED)
    assert changed["revision"] == 2 and changed["parts"][0]["part_id"] == b["id"]
    assert service.client.patch(f"/api/v1/skus/{sku['id']}", json={"sku": "s"}).json()["sku"] == "s"


def test_patch_sku_rejections(service: Service) -> None:
    c = cube(service)
    a = create(service, {"sku": "A", "name": "A"}).json()
    create(service, {"sku": "B", "name": "B"})
    assert service.client.patch("/api/v1/skus/nope", json={"name": "x"}).status_code == 404
    r = service.client.patch(f"/api/v1/skus/{a['id']}", json={"sku": "b"})
    assert r.status_code == 409 and "'B'" in r.json()["detail"]
    r = service.client.patch(f"/api/v1/skus/{a['id']}", json={"parts": [{"part_id": c["id"], "quantity": 0}]})
    assert r.status_code == 422 and problem_field(r) == "parts[0].quantity"
    r = service.client.patch(f"/api/v1/skus/{a['id']}", json={"parts": [{"part_id": "gone", "quantity": 1}]})
    assert r.status_code == 422 and problem_field(r) == "parts[0].part_id"
    r = service.client.patch(f"/api/v1/skus/{a['id']}", json={"name": None})
    assert r.status_code == 422 and problem_field(r) == "name"
    assert service.client.get(f"/api/v1/skus/{a['id']}").json()["revision"] == 1


async def order_changed(service: Service, order_id: str, number: str, status: str, revision: int,
                        sku_ids: list[str]) -> None:
    message = OrderChanged(
        id=order_id, order_number=number, status=status, is_complete=False, sku_ids=sku_ids,
        revision=revision, updated_at="2026-01-01T00:00:00Z",
    )
    await handlers.record_order_usage(messages.record_order_usage(message), service.uow(), service.deps)


async def test_delete_sku_used_by_an_open_order_is_409_naming_the_orders(service: Service) -> None:
    sku = create(service, {"sku": "S", "name": "S"}).json()
    await order_changed(service, "o1", "1001", "queued", 1, [sku["id"]])
    await order_changed(service, "o2", "1002", "open", 1, [sku["id"], "other"])
    r = service.client.delete(f"/api/v1/skus/{sku['id']}")
    assert r.status_code == 409
    assert "1001" in r.json()["detail"] and "1002" in r.json()["detail"]
    assert {u["id"] for u in r.json()["used_by"]} == {"o1", "o2"}
    await order_changed(service, "o1", "1001", "closed", 5, [sku["id"]])
    await order_changed(service, "o2", "1002", "cancelled", 2, [sku["id"]])
    await order_changed(service, "o2", "1002", "open", 1, [sku["id"]])
    service.published.clear()
    assert service.client.delete(f"/api/v1/skus/{sku['id']}").status_code == 204
    [gone] = envelope_data(service.published, SKU_CHANGED)
    assert gone["deleted"] is True and gone["revision"] == 2 and gone["id"] == sku["id"]
    assert service.client.get(f"/api/v1/skus/{sku['id']}").status_code == 404
    assert service.client.delete(f"/api/v1/skus/{sku['id']}").status_code == 404


async def test_an_order_dropping_the_sku_frees_it(service: Service) -> None:
    sku = create(service, {"sku": "S", "name": "S"}).json()
    await order_changed(service, "o1", "1001", "printing", 1, [sku["id"]])
    assert service.client.delete(f"/api/v1/skus/{sku['id']}").status_code == 409
    await order_changed(service, "o1", "1001", "printing", 2, [])
    assert service.client.delete(f"/api/v1/skus/{sku['id']}").status_code == 204


def test_sku_json_matches_its_documented_schema(service: Service) -> None:
    c, b = cube(service), box(service)
    r = create(service, {"sku": "DOC", "name": "Doc", "parts": [
        {"part_id": c["id"], "quantity": 1}, {"part_id": b["id"], "quantity": 2, "sku_params": ["finish"]}
    ]})
    body = r.json()
    assert SkuOut.model_validate(body).model_dump(mode="json") == body
    listed = service.client.get("/api/v1/skus").json()["items"][0]
    assert listed == body == service.client.get(f"/api/v1/skus/{body['id']}").json()
    assert body["created_at"].endswith("Z")
