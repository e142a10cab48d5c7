"""Issue 15 through every service: a farm that mixes brands. The default fleet's Klipper printer
(Moonraker, its spool from Spoolman) and Prusa MK4 (PrusaLink, its filament from the operator) print
beside the Bambu printers, matched by material and by the kind of printer a pre-sliced file is for (a
Bambu project never goes to them, plain G-code never to a Bambu printer); STL and OpenSCAD parts are
sliced by the real slicer service for each of them (plain G-code for the Klipper and Prusa printers, a
Bambu project for the Bambu one); a gateway killed mid-print on the Klipper printer loses nothing and
prints nothing twice."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from contracts.printers.v1 import PrintUpdated
from contracts.slicer.v1 import SLICED_FILES_BUCKET
from devstack import Stack

from .mesh_files import stl_cube
from .sliced_files import gcode_3mf, plain_gcode

pytestmark = pytest.mark.integration

Wait = Callable[..., Awaitable[Any]]
KLIPPER, PRUSA, BAMBU_ABS = "voron-01", "mk4-01", "p1p-01"
BAMBU_ABS_MATERIALS = [{"slot": 254, "type": "ABS", "color": "#000000", "profile": "GFB00", "remain_percent": 70}]
"""The default fleet's load of the P1P, as the simulator's control API takes it."""
JOB_STATUSES = ("queued", "slicing", "assigned", "printing", "paused", "completed", "failed", "cancelled")


class Farm:
    """The stack's printers by name, the simulator's switches, and orders of parts."""

    def __init__(self, stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> None:
        assert stack.sim is not None
        self.stack, self.api, self.wait_until, self.sim = stack, api, wait_until, stack.sim
        self.control = httpx.AsyncClient(base_url=stack.sim.control_url, timeout=30, trust_env=False)
        self.ids: dict[str, str] = {}

    async def printers(self) -> dict[str, dict[str, Any]]:
        items = (await self.api.get("/api/v1/printers?limit=500")).json()["items"]
        return {p["name"]: p for p in items}

    async def printer(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self.api.get(f"/api/v1/printers/{self.ids[name]}")).json()
        return body

    async def faults(self, name: str, **switches: Any) -> dict[str, Any]:
        reply = await self.control.post(f"/printers/{self.sim.printer(name).serial}/faults", json=switches)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    async def sim_state(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self.control.get(f"/printers/{self.sim.printer(name).serial}")).json()
        return body

    async def ready(self, *names: str, print_seconds: float = 3) -> None:
        """Each printer online, idle, its bed clear, and printing for `print_seconds` real seconds."""
        found = await self.printers()
        self.ids.update({name: found[name]["id"] for name in names})
        for name in names:
            await self.faults(name, print_seconds=print_seconds)

            async def idle_and_clear(name: str = name) -> bool:
                p = await self.printer(name)
                if p["online"] and not p["current_job_id"] and not p["bed_clear"]:
                    await self.api.post(f"/api/v1/printers/{p['id']}/bed-cleared")
                    p = await self.printer(name)
                return bool(p["online"] and p["bed_clear"] and not p["current_job_id"] and p["state"] != "error")

            await self.wait_until(idle_and_clear, 60, f"{name} to be idle with a clear bed")

    async def part(self, name: str, data: bytes, file_name: str, material: str) -> str:
        reply = await self.api.post(
            "/api/v1/parts",
            files={"file": (file_name, data)},
            data={"name": f"{name} {uuid.uuid4().hex[:6]}", "material_type": material},
        )
        assert reply.status_code == 201, reply.text
        part_id: str = reply.json()["id"]
        return part_id

    async def order(self, part_ids: list[str], assignment: dict[str, Any] | None = None) -> str:
        sku = await self.api.post(
            "/api/v1/skus",
            json={
                "sku": f"MIX-{uuid.uuid4().hex[:8]}",
                "name": "Mixed fleet kit",
                "parts": [{"part_id": part_id, "quantity": 1} for part_id in part_ids],
            },
        )
        assert sku.status_code == 201, sku.text
        order = await self.api.post(
            "/api/v1/orders",
            json={
                "order_number": f"MIX-{uuid.uuid4().hex[:6]}",
                "line_items": [{"sku_id": sku.json()["id"], "quantity": 1}],
            },
        )
        assert order.status_code == 201, order.text
        order_id: str = order.json()["id"]
        body = {"assignment": assignment} if assignment else {}
        click = await self.api.post(f"/api/v1/orders/{order_id}/print-jobs", json=body)
        assert click.status_code == 202, click.text
        return order_id

    async def jobs(self, order_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.api.get(f"/api/v1/jobs?order_id={order_id}&limit=500")).json()[
            "items"
        ]
        return items

    async def jobs_in(self, order_id: str, count: int, *statuses: str) -> list[dict[str, Any]] | None:
        jobs = await self.jobs(order_id)
        return jobs if len(jobs) == count and all(j["status"] in statuses for j in jobs) else None

    async def clear_beds(self, *names: str) -> None:
        """Leave the printers as the next test expects to find them: the parts taken off."""
        for name in names:
            if name not in self.ids:
                continue

            async def cleared(name: str = name) -> bool:
                p = await self.printer(name)
                if not p["current_job_id"] and not p["bed_clear"]:
                    await self.api.post(f"/api/v1/printers/{p['id']}/bed-cleared")
                    p = await self.printer(name)
                return bool(p["bed_clear"])

            await self.wait_until(cleared, 60, f"{name}'s bed cleared")
            await self.faults(name, print_seconds=None)


@pytest.fixture
async def farm(stack: Stack, api: httpx.AsyncClient, wait_until: Wait) -> AsyncIterator[Farm]:
    farm = Farm(stack, api, wait_until)
    try:
        yield farm
    finally:
        await farm.clear_beds(KLIPPER, PRUSA, BAMBU_ABS)
        await farm.control.aclose()


async def test_klipper_and_prusa_printers_show_brand_appropriate_state_and_materials(farm: Farm) -> None:
    await farm.ready(KLIPPER, PRUSA)
    printers = await farm.printers()
    voron, mk4 = printers[KLIPPER], printers[PRUSA]
    assert (voron["protocol"], voron["model"], voron["port"]) == (
        "moonraker",
        "Voron 2.4",
        farm.sim.printer(KLIPPER).port,
    )
    assert (mk4["protocol"], mk4["model"]) == ("prusalink", "Prusa MK4")
    assert [(m["type"], m["color"], m["remain_percent"]) for m in voron["materials"]] == [("ASA", "#1E90FF", 65)]
    assert [(m["type"], m["color"]) for m in mk4["materials"]] == [("PC", "#F5F5F5")]
    listing = (await farm.api.get("/api/v1/printers?limit=500")).text
    assert "api_key" not in listing and farm.sim.printer(PRUSA).api_key not in listing

    moved = await farm.api.patch(f"/api/v1/printers/{mk4['id']}", json={"host": "127.0.0.2"})
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "api_key"
    refilled = await farm.api.patch(
        f"/api/v1/printers/{mk4['id']}", json={"materials": [{"type": "pc", "color": "#222222"}]}
    )
    assert refilled.status_code == 200, refilled.text
    assert [(m["type"], m["color"]) for m in refilled.json()["materials"]] == [("PC", "#222222")]
    restored = await farm.api.patch(
        f"/api/v1/printers/{mk4['id']}", json={"materials": [{"type": "PC", "color": "#F5F5F5"}]}
    )
    assert restored.status_code == 200


async def test_registering_printers_of_each_protocol(api: httpx.AsyncClient) -> None:
    """Defaults by protocol, the right secret for each, problems naming the field, the key never shown."""
    base = {"name": f"reg-{uuid.uuid4().hex[:6]}", "host": "127.0.0.1"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"protocol": "prusalink", "model": "Prusa XL"}, "api_key"),
        ({"protocol": "octoprint", "model": "Ender 3"}, "api_key"),
        ({"protocol": "moonraker", "model": "Voron 2.4", "access_code": "12345678"}, "access_code"),
        ({"protocol": "bambu_lan", "model": "X1C", "access_code": "12345678"}, "serial"),
        ({"protocol": "bambu_lan", "model": "X1C", "serial": "S-1", "api_key": "k"}, "access_code"),
        ({"protocol": "klipper", "model": "Voron 2.4"}, "protocol"),
        (
            {"protocol": "moonraker", "model": "Voron", "materials": [{"type": "PLA", "color": "blue"}]},
            "materials[0].color",
        ),
    ]
    for body, field in cases:
        reply = await api.post("/api/v1/printers", json={**base, **body})
        assert reply.status_code == 422, (body, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in reply.json()["errors"]], (body, reply.text)

    secret = uuid.uuid4().hex
    created = []
    for protocol, port in (("moonraker", 7125), ("octoprint", 80), ("prusalink", 80)):
        reply = await api.post(
            "/api/v1/printers",
            json={
                **base,
                "name": f"{base['name']}-{protocol}",
                "protocol": protocol,
                "model": "Prusa MK3S",
                "api_key": secret,
                "materials": [{"type": "petg", "color": "#00ff00"}],
            },
        )
        assert reply.status_code == 201, reply.text
        printer = reply.json()
        created.append(printer["id"])
        assert (printer["protocol"], printer["port"], printer["serial"]) == (protocol, port, None)
        assert [(m["type"], m["color"]) for m in printer["materials"]] == [("PETG", "#00FF00")]
        assert secret not in reply.text and "api_key" not in printer
    wrong = await api.patch(f"/api/v1/printers/{created[0]}", json={"access_code": "12345678"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "access_code"
    moved = await api.patch(f"/api/v1/printers/{created[0]}", json={"port": 7126, "api_key": secret})
    assert moved.status_code == 200 and moved.json()["port"] == 7126 and secret not in moved.text
    keyless = await api.post(
        "/api/v1/printers",
        json={**base, "name": f"{base['name']}-keyless", "protocol": "moonraker", "model": "Ender 3"},
    )
    assert keyless.status_code == 201, keyless.text
    created.append(keyless.json()["id"])
    moved_keyless = await api.patch(f"/api/v1/printers/{created[-1]}", json={"host": "127.0.0.3"})
    assert moved_keyless.status_code == 200, "a Moonraker without an API key has no secret to protect"
    for printer_id in created:
        assert (await api.delete(f"/api/v1/printers/{printer_id}")).status_code == 204


async def test_one_order_prints_on_a_bambu_a_klipper_and_a_prusa_printer_matched_by_material(farm: Farm) -> None:
    await farm.ready(KLIPPER, PRUSA, BAMBU_ABS)
    bambu = await farm.part("Bracket", gcode_3mf(minutes=20, filament="ABS"), "bracket.gcode.3mf", "ABS")
    klipper = await farm.part("Duct", plain_gcode(minutes=20, filament="ASA"), "duct.gcode", "ASA")
    prusa = await farm.part("Lens cover", plain_gcode(minutes=20, filament="PC"), "cover.gcode", "PC")
    prints_before = {name: (await farm.sim_state(name)) for name in (KLIPPER, PRUSA)}

    order_id = await farm.order([bambu, klipper, prusa])

    jobs = await farm.wait_until(lambda: farm.jobs_in(order_id, 3, "completed"), 120, "three jobs completed")
    where = {j["printer_id"] for j in jobs}
    assert where == {farm.ids[KLIPPER], farm.ids[PRUSA], farm.ids[BAMBU_ABS]}
    for name in (KLIPPER, PRUSA):
        assert (await farm.sim_state(name))["prints_started"] == prints_before[name]["prints_started"] + 1
    order = await farm.wait_until(
        lambda: _if(farm.api.get(f"/api/v1/orders/{order_id}"), lambda o: o["is_complete"]), 30, "the green check"
    )
    assert order["jobs"]["completed"] == 3
    for name in (KLIPPER, PRUSA):
        assert (await farm.printer(name))["bed_clear"] is False, f"the part is still on {name}'s bed"


SPACER_SCAD = b"""// a flat spacer; its size is the part's own (no parameters set by the order)
width = 24;
linear_extrude(3) difference() { square([width, 14]); translate([width / 2, 7]) circle(r = 3, $fn = 24); }
"""


async def test_stl_and_scad_parts_are_sliced_for_and_print_on_a_bambu_a_klipper_and_a_prusa_printer(
    farm: Farm, stack: Stack
) -> None:
    """Issue 15's acceptance with parts the slicer must make printable: one order, an STL in ABS (only the
    Bambu P1P holds it), an OpenSCAD part in ASA (only the Klipper Voron) and an STL in PC (only the
    PrusaLink MK4). Each prints where its material is, from G-code the real slicer made for that model:
    plain `.gcode` on the Klipper and Prusa printers, a `.gcode.3mf` on the Bambu one, and the order
    completes."""
    if "slicer" not in stack.config.services:
        pytest.skip("this stack runs no slicer service")
    await farm.ready(KLIPPER, PRUSA, BAMBU_ABS)
    bambu = await farm.part("Bracket", stl_cube(12.0), "bracket.stl", "ABS")
    klipper = await farm.part("Spacer", SPACER_SCAD, "spacer.scad", "ASA")
    prusa = await farm.part("Lens cap", stl_cube(10.0), "lens-cap.stl", "PC")
    prints_before = {name: (await farm.sim_state(name))["prints_started"] for name in (KLIPPER, PRUSA)}

    order_id = await farm.order([bambu, klipper, prusa])

    async def settled() -> list[dict[str, Any]] | None:
        jobs = await farm.jobs(order_id)
        failed = [(j["part_name"], j["error"]) for j in jobs if j["status"] == "failed"]
        assert not failed, failed
        return jobs if len(jobs) == 3 and all(j["status"] == "completed" for j in jobs) else None

    jobs = await farm.wait_until(settled, 600, "the three parts sliced and printed")
    by_material = {j["material"]["type"]: j for j in jobs}
    expected = {
        "ABS": (BAMBU_ABS, "gcode.3mf", "bambu-p1p/abs"),
        "ASA": (KLIPPER, "gcode", "voron-24-350/asa"),
        "PC": (PRUSA, "gcode", "prusa-mk4/pc"),
    }
    nc = await nats.connect(stack.nats_url)
    try:
        store = await nc.jetstream().object_store(SLICED_FILES_BUCKET)
        for material, (name, kind, profile) in expected.items():
            job = by_material[material]
            assert job["printer_id"] == farm.ids[name], (material, job["printer_id"])
            file = job["file"]
            assert (file["kind"], file["profile"]) == (kind, profile), file
            assert file["print_minutes"] > 0 and file["grams"] > 0
            # The printer holds the very file the slicer put into sliced-files, and printed it once.
            at_printer = {f["name"]: f["sha256"] for f in (await farm.sim_state(name))["files"]}
            assert at_printer[f"{job['id']}.{kind}"] == file["sha256"]
            if name in prints_before:
                assert (await farm.sim_state(name))["prints_started"] == prints_before[name] + 1
            made = (await store.get(file["sha256"])).data or b""
            if kind == "gcode":
                assert made.startswith(b"; generated by PrusaSlicer"), made[:80]
                assert b"G28" in made and b"M620" not in made, "a G-code printer's start G-code, no Bambu AMS calls"
            else:
                assert made.startswith(b"PK"), "a Bambu project (zip)"
        mk4_file = (await store.get(by_material["PC"]["file"]["sha256"])).data or b""
        assert b'M862.3 P "MK4"' in mk4_file, "sliced with the MK4's own profile (its firmware checks the model)"
    finally:
        await nc.close()
    order = await farm.wait_until(
        lambda: _if(farm.api.get(f"/api/v1/orders/{order_id}"), lambda o: o["is_complete"]), 30, "the green check"
    )
    assert order["jobs"]["completed"] == 3


async def test_a_gateway_killed_mid_print_on_the_klipper_printer_loses_nothing(farm: Farm, stack: Stack) -> None:
    await farm.ready(KLIPPER, print_seconds=12)
    part = await farm.part("Duct", plain_gcode(minutes=60, filament="ASA"), "duct.gcode", "ASA")
    started = (await farm.sim_state(KLIPPER))["prints_started"]
    order_id = await farm.order([part], {"mode": "printer", "printer_id": farm.ids[KLIPPER]})
    await farm.wait_until(lambda: farm.jobs_in(order_id, 1, "printing"), 60, "the job to start printing")

    gateway = stack.instance("printer_gateway")
    await stack.kill_service(gateway.name)
    await stack.start_service("printer_gateway", instance=gateway.name)

    await farm.wait_until(lambda: farm.jobs_in(order_id, 1, "completed"), 90, "the job to complete after the restart")
    assert (await farm.sim_state(KLIPPER))["prints_started"] == started + 1, (
        "the restarted gateway must not start it again"
    )
    assert (await farm.printer(KLIPPER))["bed_clear"] is False


async def test_a_bambu_project_assigned_to_a_klipper_printer_waits_and_says_why(farm: Farm, stack: Stack) -> None:
    """The queue never sends a `.gcode.3mf` to a G-code printer (the gateway would refuse it and the job
    fail for good): it waits, its matching says why, and the plain G-code part behind it prints."""
    await farm.ready(KLIPPER)
    project = await farm.part("Bambu-only", gcode_3mf(minutes=10, filament="ASA"), "bambu.gcode.3mf", "ASA")
    plain = await farm.part("Duct", plain_gcode(minutes=10, filament="ASA"), "duct.gcode", "ASA")
    started = (await farm.sim_state(KLIPPER))["prints_started"]
    nc = await nats.connect(stack.nats_url)
    updates: list[dict[str, Any]] = []

    async def on_update(msg: Msg) -> None:
        updates.append(json.loads(msg.data)["data"])

    subscription = await nc.jetstream().subscribe(PrintUpdated.SUBJECT, cb=on_update, deliver_policy=DeliverPolicy.NEW)
    try:
        # The project is first in queue order: a pass that looked only at material would send it.
        order_id = await farm.order([project, plain], {"mode": "printer", "printer_id": farm.ids[KLIPPER]})
        jobs = await farm.wait_until(lambda: farm.jobs_in(order_id, 2, *JOB_STATUSES), 60, "the jobs")
        by_kind = {j["file"]["kind"]: j for j in jobs}
        waiting, printed = by_kind["gcode.3mf"], by_kind["gcode"]
        await farm.wait_until(
            lambda: _job_in(farm, printed["id"], "completed"), 90, "the plain G-code part to print on the Klipper"
        )
    finally:
        await subscription.unsubscribe()
        await nc.close()
    assert not [u for u in updates if u["job_id"] == waiting["id"]], "the project was never dispatched"
    assert (await farm.api.get(f"/api/v1/jobs/{waiting['id']}")).json()["status"] == "queued"
    assert (await farm.sim_state(KLIPPER))["prints_started"] == started + 1
    verdicts = (await farm.api.get(f"/api/v1/jobs/{waiting['id']}/matching")).json()["items"]
    voron = next(v for v in verdicts if v["printer_id"] == farm.ids[KLIPPER])
    assert voron["result"] == "file_mismatch"
    assert voron["detail"] == "a Bambu project file (.gcode.3mf) cannot print on a Klipper printer"
    cancel = await farm.api.post(f"/api/v1/orders/{order_id}/cancel")
    assert cancel.status_code in (200, 202), cancel.text


async def test_a_bambu_project_and_plain_gcode_of_one_material_each_print_on_their_kind_of_printer(
    farm: Farm,
) -> None:
    """A Bambu printer and the Klipper printer both hold ASA: the `.gcode.3mf` prints on the Bambu one,
    the `.gcode` on the Klipper one, whichever has been idle longer, and neither job fails."""
    serial = farm.sim.printer(BAMBU_ABS).serial
    asa = [{"slot": 254, "type": "ASA", "color": "#1E90FF", "profile": "GFB98", "remain_percent": 80}]
    loaded = await farm.control.put(f"/printers/{serial}/materials", json=asa)
    assert loaded.status_code == 200, loaded.text
    try:
        await farm.ready(KLIPPER, BAMBU_ABS)
        await farm.wait_until(
            lambda: _if(farm.api.get(f"/api/v1/printers/{farm.ids[BAMBU_ABS]}"),
                        lambda p: any(m["type"] == "ASA" for m in p["materials"])),
            60, "the Bambu printer to report its ASA",
        )
        project = await farm.part("Clip", gcode_3mf(minutes=10, filament="ASA"), "clip.gcode.3mf", "ASA")
        plain = await farm.part("Duct", plain_gcode(minutes=10, filament="ASA"), "duct.gcode", "ASA")
        for first, second in ((project, plain), (plain, project)):
            order_id = await farm.order([first, second])
            jobs = await farm.wait_until(
                lambda order_id=order_id: farm.jobs_in(order_id, 2, "completed", "failed"), 120, "both jobs done"
            )
            where = {j["file"]["kind"]: (j["status"], j["printer_id"]) for j in jobs}
            assert where == {
                "gcode.3mf": ("completed", farm.ids[BAMBU_ABS]),
                "gcode": ("completed", farm.ids[KLIPPER]),
            }, jobs
            await farm.ready(KLIPPER, BAMBU_ABS)
    finally:
        restored = await farm.control.put(f"/printers/{serial}/materials", json=BAMBU_ABS_MATERIALS)
        assert restored.status_code == 200, restored.text


async def _job_in(farm: Farm, job_id: str, status: str) -> dict[str, Any] | None:
    job: dict[str, Any] = (await farm.api.get(f"/api/v1/jobs/{job_id}")).json()
    return job if job["status"] == status else None


async def _if(value: Awaitable[httpx.Response], check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    body: dict[str, Any] = (await value).json()
    return body if check(body) else None
