"""Meshes through the real PrusaSlicer: an STL and a 3MF slice into projects the farm reads back, a part
bigger than the bed or an empty mesh fails with a clear message, FabMatic ends by clearing the bed."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path
from typing import Literal

import pytest
from slicer_samples import bambu_style_3mf, box_stl

from printer_simulator.project import JobRefused, inspect_gcode, inspect_project
from skus.domain.files import inspect_file
from slicer.domain.errors import SliceError
from slicer.domain.job import SliceJob
from slicer.service_layer.pipeline import SlicePipeline

pytestmark = pytest.mark.integration


def mesh_job(
    source: bytes,
    kind: Literal["stl", "3mf"] = "stl",
    model: str = "P1S",
    material: str = "PETG",
    fabmatic: bool = False,
) -> SliceJob:
    return SliceJob(
        source_sha256=hashlib.sha256(source).hexdigest(),
        source_kind=kind,
        source_filename=f"bracket.{kind}",
        parameters={},
        printer_model=model,
        fabmatic=fabmatic,
        material_type=material,
        material_color="#00AE42",
    )


def plate(content: bytes) -> bytes:
    return zipfile.ZipFile(io.BytesIO(content)).read("Metadata/plate_1.gcode")


async def test_an_stl_slices_into_a_project_the_printer_and_skus_read(pipeline: SlicePipeline, tmp_path: Path) -> None:
    stl = box_stl(20, 15, 4)
    made = await pipeline.make_printable(mesh_job(stl), stl)
    assert made.kind == "gcode.3mf" and made.profile == "bambu-p1s/petg"
    assert made.layers == 20
    assert made.grams > 0.5 and made.print_minutes > 1
    gcode = plate(made.content)
    assert gcode.count(b"\nM991 S0 P") == 20 and b"M109 S250" in gcode  # PETG's first-layer temperature
    assert b"M620 S255" in gcode  # the standard end G-code returns the filament to the AMS

    sliced = inspect_project("bracket.gcode.3mf", made.content, "Metadata/plate_1.gcode")
    assert sliced.total_layers == 20
    assert sliced.print_seconds == pytest.approx(made.print_minutes * 60, abs=1)

    info = inspect_file(io.BytesIO(made.content), made.filename)
    assert info.kind.value == "gcode.3mf"
    assert info.plates[0].filaments[0].type == "PETG"
    assert info.plates[0].filaments[0].grams == pytest.approx(made.grams, abs=0.01)


async def test_the_same_mesh_slices_to_the_same_bytes(pipeline: SlicePipeline) -> None:
    stl = box_stl(12, 12, 3)
    first = await pipeline.make_printable(mesh_job(stl), stl)
    second = await pipeline.make_printable(mesh_job(stl), stl)
    assert first.sha256 == second.sha256


async def test_a_part_bigger_than_the_bed_fails_saying_so(pipeline: SlicePipeline) -> None:
    stl = box_stl(300, 20, 5)
    with pytest.raises(SliceError, match="does not fit the P1S") as error:
        await pipeline.make_printable(mesh_job(stl), stl)
    assert error.value.stage == "slice" and not error.value.transient
    assert "300.0 × 20.0 × 5.0 mm" in error.value.message and "256 × 256 × 250 mm" in error.value.message


async def test_a_part_taller_than_the_a1_mini(pipeline: SlicePipeline) -> None:
    stl = box_stl(10, 10, 190)
    with pytest.raises(SliceError, match="does not fit the A1 mini"):
        await pipeline.make_printable(mesh_job(stl, model="A1 mini", material="PLA"), stl)


def print_bounds(gcode: bytes) -> tuple[float, float, float, float]:
    """min x, min y, max x, max y of the part's extruding moves: from the second layer (the first has the
    skirt around the part) to the last layer change."""
    text = gcode.decode()
    second = text.index(";LAYER_CHANGE", text.index(";LAYER_CHANGE") + 1)
    body = text[second : text.rindex(";LAYER_CHANGE")]
    xs: list[float] = []
    ys: list[float] = []
    for match in re.finditer(r"^G1 X(-?[\d.]+) Y(-?[\d.]+) E[\d.]", body, re.MULTILINE):
        xs.append(float(match[1]))
        ys.append(float(match[2]))
    return min(xs), min(ys), max(xs), max(ys)


async def test_parts_are_centred_on_the_bed(pipeline: SlicePipeline) -> None:
    stl = box_stl(40, 20, 2)
    made = await pipeline.make_printable(mesh_job(stl), stl)
    min_x, min_y, max_x, max_y = print_bounds(plate(made.content))
    assert (min_x + max_x) / 2 == pytest.approx(128, abs=1) and (min_y + max_y) / 2 == pytest.approx(128, abs=1)
    assert max_x - min_x == pytest.approx(40, abs=1) and max_y - min_y == pytest.approx(20, abs=1)


async def test_a_part_that_fits_only_turned_is_turned(pipeline: SlicePipeline) -> None:
    stl = box_stl(310, 20, 2)  # the H2D's single-nozzle area is x 25-325 (300 wide) and 320 deep
    made = await pipeline.make_printable(mesh_job(stl, model="H2D", material="PLA"), stl)
    assert made.profile == "bambu-h2d/pla" and made.layers == 10
    min_x, min_y, max_x, max_y = print_bounds(plate(made.content))
    assert max_y - min_y == pytest.approx(310, abs=1) and max_x - min_x == pytest.approx(20, abs=1)
    assert 25 <= min_x and max_x <= 325 and 0 <= min_y and max_y <= 320


@pytest.mark.parametrize(
    ("model", "material", "profile", "centre"),
    [
        ("Prusa MK4", "PC", "prusa-mk4/pc", (125, 105)),
        ("Prusa MK3S", "PETG", "prusa-mk3s/petg", (125, 105)),
        ("Prusa XL", "PLA", "prusa-xl/pla", (180, 180)),
        ("Prusa MINI", "PLA", "prusa-mini/pla", (90, 90)),
        ("Voron 2.4", "ASA", "voron-24-350/asa", (175, 175)),
        ("Creality K1", "ABS", "creality-k1/abs", (110, 110)),
        ("Ender 3", "PLA", "creality-ender-3/pla", (110, 110)),
    ],
)
async def test_plain_gcode_printers_get_gcode_they_print(
    pipeline: SlicePipeline, model: str, material: str, profile: str, centre: tuple[float, float]
) -> None:
    """Plain G-code, centred on that printer's bed, with the printer's own start G-code (the Prusa model
    check), which a G-code printer (the simulator's reading of it) prints for the sliced time."""
    stl = box_stl(30, 20, 3)
    made = await pipeline.make_printable(mesh_job(stl, model=model, material=material), stl)
    assert (made.kind, made.filename, made.profile) == ("gcode", "bracket.gcode", profile)
    assert not made.content.startswith(b"PK"), "not a zip: plain G-code"
    min_x, min_y, max_x, max_y = print_bounds(made.content)
    assert ((min_x + max_x) / 2, (min_y + max_y) / 2) == pytest.approx(centre, abs=1)
    text = made.content.decode()
    assert "G28" in text and "M620" not in text and "M991" not in text
    if model.startswith("Prusa"):
        assert f'M862.3 P "{model.removeprefix("Prusa ")}"' in text
    plate_read = inspect_gcode(made.filename, made.content)
    assert plate_read.total_layers == made.layers == 15
    assert plate_read.print_seconds == pytest.approx(made.print_minutes * 60, abs=1)
    with pytest.raises(JobRefused):
        inspect_project("bracket.gcode.3mf", made.content, "Metadata/plate_1.gcode")


@pytest.mark.parametrize("mesh", [b"", b"solid empty\nendsolid empty\n", b"\0" * 84, b"not a mesh at all" * 10])
async def test_empty_or_broken_meshes_fail_clearly(pipeline: SlicePipeline, mesh: bytes) -> None:
    with pytest.raises(SliceError) as error:
        await pipeline.make_printable(mesh_job(mesh), mesh)
    assert error.value.stage == "slice"
    assert error.value.message
    assert "/tmp" not in error.value.message and "part.stl" not in error.value.message


async def test_a_3mf_mesh_slices(pipeline: SlicePipeline, tmp_path: Path) -> None:
    from slicer.adapters.limited_process import ToolLimits, run_limited

    (tmp_path / "two.scad").write_text("cube(10); translate([15, 0, 0]) cylinder(h = 6, r = 4);")
    result = await run_limited(
        ["openscad", "-o", "two.3mf", "two.scad"], cwd=tmp_path, limits=ToolLimits(time_limit_seconds=60)
    )
    assert result.returncode == 0, result.stderr
    three_mf = (tmp_path / "two.3mf").read_bytes()
    made = await pipeline.make_printable(mesh_job(three_mf, kind="3mf", model="X1E", material="ASA"), three_mf)
    assert made.profile == "bambu-x1e/asa" and made.layers == 50


async def test_fabmatic_clears_the_bed_at_the_end(pipeline: SlicePipeline) -> None:
    stl = box_stl(20, 20, 2)
    made = await pipeline.make_printable(mesh_job(stl, model="A1", material="PLA", fabmatic=True), stl)
    assert made.profile == "bambu-a1/pla+fabmatic"
    gcode = plate(made.content)
    end = gcode[gcode.rindex(b";LAYER_CHANGE") :]
    assert b"FabMatic" in end and b"M190 R28" in end
    assert end.count(b"push towards the front edge") >= 5
    assert end.index(b"M190 R28") < end.index(b"push towards the front edge")


async def test_a_bambu_studio_3mf_slices(pipeline: SlicePipeline) -> None:
    """PrusaSlicer 2.5 alone refuses this layout ("Found component with invalid object id")."""
    three_mf = bambu_style_3mf(size=20.0)
    made = await pipeline.make_printable(mesh_job(three_mf, kind="3mf", model="A1", material="PLA"), three_mf)
    assert made.profile == "bambu-a1/pla"
    assert made.layers is not None and 95 <= made.layers <= 100  # a 20 mm tetrahedron; its tip may be too thin


async def test_a_slice_past_its_time_limit_is_killed(tmp_path: Path) -> None:
    from slicer.adapters.limited_process import ToolLimits
    from slicer.service_layer.pipeline import build_pipeline

    quick = build_pipeline(None, tmp_path / "work", ToolLimits(time_limit_seconds=0.05))
    stl = box_stl(20, 20, 20)
    with pytest.raises(SliceError, match=r"did not finish within 0\.05 s") as error:
        await quick.make_printable(mesh_job(stl), stl)
    assert error.value.stage == "slice" and error.value.transient
    assert not leftovers(tmp_path / "work")


def leftovers(directory: Path) -> list[Path]:
    return list(directory.glob("*")) if directory.exists() else []
